package eval

import "github.com/allot-dev/allot/internal/ufc"

// CompileSteps compiles doc and returns the compiler's lookup steps.
func CompileSteps(doc *ufc.Document) (int, error) {
	_, steps, err := compile(doc)
	return steps, err
}
