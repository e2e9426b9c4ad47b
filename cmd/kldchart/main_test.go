package main

import (
	"bytes"
	"image/png"
	"os"
	"strings"
	"testing"
)

// TestChartFromCommittedCSV: the committed measurements parse and draw to
// a PNG.
func TestChartFromCommittedCSV(t *testing.T) {
	f, err := os.Open("../../docs/cache-kld.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := readRows(f)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := draw3(rows, &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatal(err)
	}
}

// TestBadCSV: errors name the problem and the line.
func TestBadCSV(t *testing.T) {
	h := "model,k,v,key_channels,rotation,scale,bits,mean_kld,p99_kld,top1,source,chunks\n"
	for _, c := range []struct{ in, want string }{
		{"a,b\n", "wrong number of fields"},
		{strings.Replace(h, "bits", "bpv", 1), "header"},
		{h, "no measurements"},
		{h + "m,q4_0,q4_0,off,on,,x,0.1,0.2,90,kvserve,10\n", "line 2: bits"},
		{h + "m,q4_0,q4_0,off,on,,4.5,0,0.2,90,kvserve,10\n", "line 2: mean KLD"},
	} {
		if _, err := readRows(strings.NewReader(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want an error containing %q", c.in, err, c.want)
		}
	}
}

// TestCurrent: a setting measured at 10 and 40 chunks is drawn at 40 only;
// other settings keep their rows.
func TestCurrent(t *testing.T) {
	rows := []row{
		{model: "m", k: "cb3", v: "cb3", keyChannels: "centre", rotation: "on", scale: "search", source: "kvserve", chunks: 10},
		{model: "m", k: "cb3", v: "cb3", keyChannels: "centre", rotation: "on", scale: "search", source: "kvserve", chunks: 40},
		{model: "m", k: "cb4", v: "cb4", keyChannels: "centre", rotation: "on", scale: "search", source: "kvserve", chunks: 10},
		{model: "n", k: "cb3", v: "cb3", keyChannels: "centre", rotation: "on", scale: "search", source: "kvserve", chunks: 10},
	}
	got := current(rows)
	if len(got) != 3 || got[0].chunks != 40 || got[1].k != "cb4" || got[2].model != "n" {
		t.Errorf("current: %+v", got)
	}
}
