package ingest

import "testing"

// BenchmarkDecodeEvent: one event as the Go SDK sends it, outside a
// holdout, and in one, nested (Go, Node) or spread (Eppo's JavaScript SDKs).
func BenchmarkDecodeEvent(b *testing.B) {
	const head = `{"eventId":"0190-abc-000001","featureFlag":"checkout","allocation":"exp","experiment":"checkout-exp","variation":"treatment","subject":"user-42","subjectAttributes":{"country":"US","age":30},"timestamp":"2026-05-01T12:00:00.123Z","metaData":{"sdkName":"go-allot","sdkLanguage":"go","sdkVersion":"0.1.0"}`
	for _, bc := range []struct{ name, raw string }{
		{"plain", head + `}`},
		{"nested", head + `,"extraLogging":{"holdoutKey":"q3-holdout","holdoutVariation":"status_quo"}}`},
		{"spread", head + `,"holdoutKey":"q3-holdout","holdoutVariation":"all_shipped_variants"}`},
	} {
		raw := []byte(bc.raw)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(raw)))
			var e wireEvent
			for b.Loop() {
				if err := decodeEvent(raw, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
