package sidecar

import (
	"slices"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
)

func TestStaleImages(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) int64 { return now.Add(-d).Unix() }
	cur := ImageRepo + ":aaaaaaaaaaaa"
	imgs := []image.Summary{
		{ID: "current-old", RepoTags: []string{cur}, Created: ago(72 * time.Hour)},
		{ID: "other-old", RepoTags: []string{ImageRepo + ":bbbbbbbbbbbb"}, Created: ago(25 * time.Hour)},
		{ID: "other-fresh", RepoTags: []string{ImageRepo + ":cccccccccccc"}, Created: ago(time.Hour)},
		{ID: "untagged-old", Created: ago(48 * time.Hour)},
	}
	got := staleImages(imgs, cur, now, staleImageAge)
	if want := []string{"other-old", "untagged-old"}; !slices.Equal(got, want) {
		t.Fatalf("stale = %v, want %v", got, want)
	}
}
