package web

import (
	"net/http"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

// The layers page (issue 15): each layer of the environment as a bar of its
// 10,000 shards, who owns which part and what is free, and the holdouts
// with their experiments. Read-only for now: layers and holdouts change
// through the API and the CLI (docs/layers-and-holdouts.md).

type layerView struct {
	core.Layer
	Parts []layerPart // members and free space, for the bar and the table
}

type layerPart struct {
	Label  string // flag/allocation, or "free"
	Class  string // the bar's colour class
	Share  core.Percent
	Ranges []core.Range
}

type layersData struct {
	Layers   []layerView
	Holdouts []core.Holdout
}

func (u *UI) layersPage(w http.ResponseWriter, r *http.Request, p *page) error {
	ls, err := u.core.Layers(r.Context(), p.Env)
	if err != nil {
		return err
	}
	hs, err := u.core.Holdouts(r.Context(), p.Env)
	if err != nil {
		return err
	}
	d := layersData{Holdouts: hs}
	for _, l := range ls {
		v := layerView{Layer: l}
		for i, m := range l.Members {
			v.Parts = append(v.Parts, layerPart{Label: m.Flag + " / " + m.Allocation, Class: "m" + string(rune('0'+i%8)),
				Share: m.Share(), Ranges: m.Ranges})
		}
		free := core.LayerMember{Ranges: l.Free}
		v.Parts = append(v.Parts, layerPart{Label: "free", Class: "free", Share: free.Share(), Ranges: l.Free})
		d.Layers = append(d.Layers, v)
	}
	p.Title, p.Nav, p.Data = "Layers and holdouts", "layers", d
	u.render(w, r, "layers", p)
	return nil
}
