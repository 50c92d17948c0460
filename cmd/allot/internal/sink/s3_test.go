package sink_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/allot-dev/allot/cmd/allot/internal/sink"
	"github.com/allot-dev/allot/cmd/allot/internal/sink/s3test"
	"github.com/allot-dev/allot/cmd/allot/internal/store"
)

// The S3 sink against a real S3-compatible server (SeaweedFS): the objects
// read back with parquet-go hold the table row for row, under the same
// names and with the same bytes as the local directory sink writes; a
// crash between upload and record is recovered by uploading the same
// objects again (and removing one whose rows are gone), sealing nothing
// twice.
func TestS3SealReadBackAndRecover(t *testing.T) {
	srv := s3test.Start(t)
	srv.Env(t)
	for _, d := range []string{"sqlite", "postgres"} {
		t.Run(d, func(t *testing.T) {
			forDialect(t, d, func(t *testing.T, db *store.DB) {
				ctx := context.Background()
				bucket := srv.Bucket(t, "allot-"+d)
				prefix := "feeds/assignments/"
				url := fmt.Sprintf("s3://%s/%s?endpoint=%s&region=us-east-1", bucket, strings.TrimSuffix(prefix, "/"), srv.Endpoint)
				s, err := sink.New(db, sink.Config{Dir: url, Rows: 40})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(s.Name(), "s3://"+bucket+"/"+prefix) {
					t.Fatalf("name %s", s.Name())
				}
				// The same table through a local directory sink, sealed at
				// the same points.
				dir := t.TempDir()
				local, err := sink.New(db, sink.Config{Dir: dir, Rows: 40})
				if err != nil {
					t.Fatal(err)
				}
				insert(t, db, rows(0, 100))
				sealAll(t, s, 40)
				sealAll(t, local, 40)
				insert(t, db, rows(100, 57))
				insert(t, db, rows(50, 60)) // known event ids: nothing new
				sealAll(t, s, 40)
				sealAll(t, local, 40)
				objects := srv.Objects(t, bucket, prefix)
				files := readFiles(t, objects)
				sameRows(t, files, tableRows(t, db))
				if len(files) < 6 || !strings.HasPrefix(files[0].rel, "environment=") {
					t.Fatalf("%d objects, first %s: want partitions by environment and date", len(files), files[0].rel)
				}

				// The directory holds the same names, byte for byte.
				onDisk := readDir(t, dir)
				if len(onDisk) != len(files) {
					t.Fatalf("%d files on disk, %d objects", len(onDisk), len(files))
				}
				for i := range files {
					if files[i].rel != onDisk[i].rel || !bytes.Equal(files[i].data, onDisk[i].data) {
						t.Fatalf("object %s differs from file %s", files[i].rel, onDisk[i].rel)
					}
				}

				// The crash: a seal's uploads complete, its record is lost;
				// an object of that seal holds rows retention has since
				// deleted; more rows arrive before the restart.
				insert(t, db, rows(157, 30))
				prev, err := db.SinkSealed(ctx, s.Name())
				if err != nil {
					t.Fatal(err)
				}
				if n, err := s.Seal(ctx); n != 30 || err != nil {
					t.Fatalf("seal: %d rows, %v", n, err)
				}
				objects = srv.Objects(t, bucket, prefix)
				if err := db.SetSinkSealed(ctx, s.Name(), prev); err != nil {
					t.Fatal(err)
				}
				gone := "environment=gone/date=2026-01-01/" + sink.FileName(prev+1, prev+2)
				if _, err := srv.Client.PutObject(ctx, bucket, prefix+gone, bytes.NewReader([]byte("stale")), 5, minio.PutObjectOptions{}); err != nil {
					t.Fatal(err)
				}
				insert(t, db, rows(187, 20))
				if err := s.Recover(ctx); err != nil {
					t.Fatal(err)
				}
				after := srv.Objects(t, bucket, prefix)
				if _, ok := after[gone]; ok {
					t.Errorf("object %s of rows no longer in the table left after recovery", gone)
				}
				if !slices.Equal(slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(objects))) {
					t.Fatalf("objects after recovery %v, before %v", slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(objects)))
				}
				for k, b := range objects {
					if !bytes.Equal(after[k], b) {
						t.Errorf("object %s differs after recovery", k)
					}
				}
				if seq, err := db.SinkSealed(ctx, s.Name()); err != nil || seq <= prev {
					t.Fatalf("recorded %d after recovery (was %d), %v", seq, prev, err)
				}
				sealAll(t, s, 40)
				sameRows(t, readFiles(t, srv.Objects(t, bucket, prefix)), tableRows(t, db))
			})
		})
	}
}

// A sink whose bucket does not exist fails its seal and records nothing.
func TestS3MissingBucket(t *testing.T) {
	srv := s3test.Start(t)
	srv.Env(t)
	forDialect(t, "sqlite", func(t *testing.T, db *store.DB) {
		s, err := sink.New(db, sink.Config{Dir: "s3://no-such-bucket?endpoint=" + srv.Endpoint, Rows: 40})
		if err != nil {
			t.Fatal(err)
		}
		insert(t, db, rows(0, 10))
		if _, err := s.Seal(context.Background()); err == nil {
			t.Fatal("seal into a missing bucket: no error")
		}
		if seq, err := db.SinkSealed(context.Background(), s.Name()); seq != 0 || err != nil {
			t.Fatalf("recorded %d, %v", seq, err)
		}
	})
}

func TestParseS3URL(t *testing.T) {
	loc, err := sink.ParseS3URL("s3://b/a/b/?endpoint=http://127.0.0.1:8333&region=eu-west-1")
	if err != nil || loc.Bucket != "b" || loc.Prefix != "a/b/" || loc.Endpoint != "127.0.0.1:8333" || loc.Secure ||
		loc.Region != "eu-west-1" || !loc.PathStyle {
		t.Fatalf("%+v %v", loc, err)
	}
	loc, err = sink.ParseS3URL("s3://bucket")
	if err != nil || loc.Endpoint != "s3.amazonaws.com" || !loc.Secure || loc.Prefix != "" || loc.PathStyle {
		t.Fatalf("%+v %v", loc, err)
	}
	for _, bad := range []string{"s3://", "s3:///prefix", "s3://b?endpoint=", "s3://b?endpoint=http://h/x", "s3://b?endpont=h",
		"s3://b?region=a&region=b", "s3://user:pw@b", "http://b"} {
		if _, err := sink.ParseS3URL(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
