package sink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"

	"path/filepath"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Location is a sink's place in an S3-compatible object store.
type S3Location struct {
	Bucket string
	// Prefix is the key prefix the partitions go under: "" or ending in
	// a slash.
	Prefix string
	// Endpoint is host[:port]; Secure says whether it speaks HTTPS.
	Endpoint string
	Secure   bool
	// Region is the bucket's region ("" lets the client ask the server).
	Region string
	// PathStyle addresses the bucket in the path (endpoint/bucket/key),
	// as S3-compatible servers expect; AWS itself takes the bucket as a
	// host name.
	PathStyle bool
}

// ParseS3URL reads s3://BUCKET[/PREFIX][?endpoint=URL&region=R]. Without
// endpoint, it is AWS S3 (HTTPS); endpoint may be http://host:port (a local
// server), https://host or a bare host (HTTPS). Unknown parameters are
// refused rather than ignored.
func ParseS3URL(raw string) (S3Location, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return S3Location{}, fmt.Errorf("s3 url: %w", err)
	}
	if u.Scheme != "s3" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return S3Location{}, fmt.Errorf("s3 url %q: want s3://BUCKET[/PREFIX][?endpoint=URL&region=R]", raw)
	}
	loc := S3Location{Bucket: u.Host, Endpoint: "s3.amazonaws.com", Secure: true}
	if p := strings.Trim(u.Path, "/"); p != "" {
		loc.Prefix = p + "/"
	}
	q := u.Query()
	for k, v := range q {
		if len(v) != 1 {
			return S3Location{}, fmt.Errorf("s3 url: %s given %d times", k, len(v))
		}
		switch k {
		case "endpoint":
			e := v[0]
			loc.PathStyle = true
			switch {
			case strings.HasPrefix(e, "http://"):
				loc.Secure, e = false, strings.TrimPrefix(e, "http://")
			case strings.HasPrefix(e, "https://"):
				e = strings.TrimPrefix(e, "https://")
			}
			if e = strings.TrimSuffix(e, "/"); e == "" || strings.ContainsAny(e, "/?#@") {
				return S3Location{}, fmt.Errorf("s3 url: endpoint %q: want [http[s]://]host[:port]", v[0])
			}
			loc.Endpoint = e
		case "region":
			loc.Region = v[0]
		default:
			return S3Location{}, fmt.Errorf("s3 url: unknown parameter %q (endpoint and region are known)", k)
		}
	}
	return loc, nil
}

// s3 is a sink's target in a bucket: each file is staged in a local
// temporary file, then uploaded with one PutObject (multipart for large
// files), which S3 makes visible whole or not at all. Once the upload
// returns, the object is durable: done has nothing left to do.
type s3 struct {
	loc     S3Location
	client  *minio.Client
	name    string
	staging string // local directory of staged files, one per sink
}

func newS3(raw string) (*s3, error) {
	loc, err := ParseS3URL(raw)
	if err != nil {
		return nil, err
	}
	lookup := minio.BucketLookupAuto
	if loc.PathStyle {
		lookup = minio.BucketLookupPath
	}
	// The standard AWS environment (AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), else the shared
	// credentials file (~/.aws/credentials, AWS_PROFILE).
	creds := credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{},
	})
	client, err := minio.New(loc.Endpoint, &minio.Options{Creds: creds, Secure: loc.Secure, Region: loc.Region, BucketLookup: lookup})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	name := "s3://" + loc.Bucket + "/" + loc.Prefix
	if loc.Endpoint != "s3.amazonaws.com" {
		scheme := "https://"
		if !loc.Secure {
			scheme = "http://"
		}
		name += "?endpoint=" + url.QueryEscape(scheme+loc.Endpoint)
	}
	sum := sha256.Sum256([]byte(name))
	staging := filepath.Join(os.TempDir(), "allot-sink-"+hex.EncodeToString(sum[:8]))
	return &s3{loc: loc, client: client, name: name, staging: staging}, nil
}

func (s *s3) key() string { return s.name }

func (s *s3) stage(string) (*os.File, error) {
	if err := os.MkdirAll(s.staging, 0o700); err != nil {
		return nil, err
	}
	return os.CreateTemp(s.staging, "part-*"+tmpSuffix)
}

func (s *s3) publish(ctx context.Context, f *os.File, rel string) error {
	defer s.discard(f)
	size, err := f.Seek(0, 2)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, 0); err != nil {
		return err
	}
	_, err = s.client.PutObject(ctx, s.loc.Bucket, s.loc.Prefix+rel, f, size,
		minio.PutObjectOptions{ContentType: "application/vnd.apache.parquet"})
	if err != nil {
		return fmt.Errorf("upload %s: %w", s.loc.Prefix+rel, err)
	}
	return nil
}

func (s *s3) done(context.Context) error { return nil }

func (s *s3) discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// list lists the objects under the prefix, and removes the files an
// interrupted seal left staged (a crash between stage and upload).
func (s *s3) list(ctx context.Context, fn func(rel string)) error {
	if entries, err := os.ReadDir(s.staging); err == nil {
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), tmpSuffix) {
				os.Remove(filepath.Join(s.staging, e.Name()))
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine if we return early
	for o := range s.client.ListObjects(ctx, s.loc.Bucket, minio.ListObjectsOptions{Prefix: s.loc.Prefix, Recursive: true}) {
		if o.Err != nil {
			return fmt.Errorf("list s3://%s/%s: %w", s.loc.Bucket, s.loc.Prefix, o.Err)
		}
		fn(strings.TrimPrefix(o.Key, s.loc.Prefix))
	}
	return ctx.Err()
}

func (s *s3) remove(ctx context.Context, rel string) error {
	if err := s.client.RemoveObject(ctx, s.loc.Bucket, s.loc.Prefix+rel, minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("remove %s: %w", s.loc.Prefix+rel, err)
	}
	return nil
}
