// Package table is the assignment table, once: its columns, its row, the
// limits on what goes into it, and the writers that turn rows into files
// (CSV, JSON lines, Parquet). Ingestion converts SDK events into Rows, the
// store keeps Rows, and the export endpoint, `allot export` and `allot
// assign` write Rows through the same writers, so that every table Allot
// produces has the same columns in the same form.
package table

import (
	"context"
	"encoding/json"
	"time"
)

// Columns are the columns of the assignment table, in order: the CSV
// header, the JSON lines keys and the Parquet column names.
var Columns = []string{"event_id", "environment", "experiment", "feature_flag", "allocation", "variation",
	"subject", "subject_attributes", "timestamp", "sdk_name", "sdk_version", "received_at",
	"holdout", "holdout_variation"}

// Limits of what goes into the table. Ingestion enforces them; the SDK's
// HTTP logger sends batches of at most MaxEventsPerRequest events.
const (
	// MaxEventsPerRequest is the most events one POST /api/v1/assignments
	// may carry.
	MaxEventsPerRequest = 10_000
	// MaxRequestBytes bounds a request body, after decompression.
	MaxRequestBytes = 16 << 20
	// MaxEventIDBytes bounds event_id.
	MaxEventIDBytes = 128
	// MaxKeyBytes bounds feature_flag, allocation, variation, subject,
	// holdout and holdout_variation.
	MaxKeyBytes = 1024
	// MaxAttributesBytes bounds subject_attributes (JSON text).
	MaxAttributesBytes = 64 << 10
	// MaxSDKBytes bounds sdk_name and sdk_version (longer values are cut).
	MaxSDKBytes = 64
)

// Row is one row of the assignment table: one subject assigned one
// variation of one experiment at one time. Times are UTC with microsecond
// precision (what every store and every file keeps).
type Row struct {
	EventID     string
	Environment string
	// Experiment is FeatureFlag + "-" + Allocation, as in SDK events.
	Experiment  string
	FeatureFlag string
	Allocation  string
	Variation   string
	Subject     string
	// SubjectAttributes is a JSON object (compact), "{}" when there are none.
	SubjectAttributes json.RawMessage
	Timestamp         time.Time
	SDKName           string
	SDKVersion        string
	ReceivedAt        time.Time
	// Holdout is the key of the holdout whose allocation assigned the
	// subject (the split's extraLogging holdoutKey), "" outside holdouts;
	// HoldoutVariation is its half: HoldoutStatusQuo or HoldoutAllShipped.
	// They come last so that tables written before them keep their column
	// positions.
	Holdout          string
	HoldoutVariation string
}

// The halves of a holdout, as holdout_variation holds them.
const (
	HoldoutStatusQuo  = "status_quo"
	HoldoutAllShipped = "all_shipped"
)

// HoldoutVariation returns the table's form of an SDK's holdoutVariation:
// "all_shipped_variants", which some of Eppo's configurations use, is
// HoldoutAllShipped; anything else is kept as sent.
func HoldoutVariation(v string) string {
	if v == "all_shipped_variants" {
		return HoldoutAllShipped
	}
	return v
}

// Micro truncates t to the table's precision, in UTC.
func Micro(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// Sink takes the rows of an assignment table, in order, a batch at a time.
// The file writers (NewWriter) are sinks: the export endpoint writes the
// rows it pages out of the store into one, and `allot assign` writes the
// rows it computes into one. A warehouse loader (BigQuery, Snowflake, S3
// files...) will be another implementation: it receives the same batches
// through the same calls, so that an export or a scheduled copy can target
// it without changing the code that reads the store.
//
// Write may keep nothing of rows after it returns (the caller reuses them).
// Close flushes what the sink buffers and finishes its output (a Parquet
// footer, say); it does not close the destination the sink was made with.
// After an error the sink is unusable and its output incomplete.
type Sink interface {
	Write(ctx context.Context, rows []Row) error
	Close(ctx context.Context) error
}
