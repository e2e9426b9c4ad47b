// Command kldchart draws docs/cache-kld.png, the cache types' fidelity
// chart (issue 18), from the committed measurements in docs/cache-kld.csv:
// bits per cached value against mean KLD, p99 KLD and top-1 agreement
// with the f16 cache, one column per model, one series per setting
// (rotation off/on, key channels, codebook scale choice) and llama.cpp's
// figures beside kvserve's.
//
//	go run ./cmd/kldchart -in docs/cache-kld.csv -out docs/cache-kld.png
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"image/color"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

func main() {
	in := flag.String("in", "docs/cache-kld.csv", "measurements (CSV with a header row)")
	out := flag.String("out", "docs/cache-kld.png", "chart to write (PNG)")
	flag.Parse()
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "kldchart:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	rows, err := readRows(f)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := draw3(rows, w); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// row is one measurement: a K/V setting of one model.
type row struct {
	model, k, v, keyChannels, rotation, scale, source string
	bits, kld, p99, top1                              float64
	hasP99                                            bool
	chunks                                            int
}

var header = []string{"model", "k", "v", "key_channels", "rotation", "scale", "bits", "mean_kld", "p99_kld", "top1", "source", "chunks"}

// readRows parses the CSV; every error names the line.
func readRows(r io.Reader) ([]row, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(header)
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != strings.Join(header, ",") {
		return nil, fmt.Errorf("want the header %s", strings.Join(header, ","))
	}
	var rows []row
	for i, rec := range recs[1:] {
		x := row{model: rec[0], k: rec[1], v: rec[2], keyChannels: rec[3], rotation: rec[4], scale: rec[5], source: rec[10]}
		num := func(j int) float64 {
			if err != nil {
				return 0
			}
			var v float64
			if v, err = strconv.ParseFloat(rec[j], 64); err != nil {
				err = fmt.Errorf("line %d: %s %q is not a number", i+2, header[j], rec[j])
			}
			return v
		}
		x.bits, x.kld, x.top1 = num(6), num(7), num(9)
		if rec[8] != "" {
			x.p99, x.hasP99 = num(8), true
		}
		if err == nil {
			if x.chunks, err = strconv.Atoi(rec[11]); err != nil {
				err = fmt.Errorf("line %d: chunks %q is not a number", i+2, rec[11])
			}
		}
		if err != nil {
			return nil, err
		}
		if x.kld <= 0 {
			return nil, fmt.Errorf("line %d: mean KLD %g must be positive (log scale)", i+2, x.kld)
		}
		rows = append(rows, x)
	}
	if len(rows) == 0 {
		return nil, errors.New("no measurements")
	}
	return rows, nil
}

// series names the setting a row belongs to (one colour and glyph each).
// Key channels "centre+query" are centred keys written with
// --cache-key-encode query. A K name with "+L" is a per-layer allocation (that type by default,
// other layers overridden; docs/cache.md gives the flags).
func series(r row) string {
	switch {
	case r.source != "kvserve":
		return r.source + ", rotation off (40 chunks)"
	case strings.Contains(r.keyChannels, "query"):
		return fmt.Sprintf("kvserve query-aware keys (--cache-key-encode query), centred (%d chunks)", r.chunks)
	case r.scale == "maxabs":
		return fmt.Sprintf("codebook, max-abs scales, centred keys (%d chunks)", r.chunks)
	case r.scale == "fine":
		return fmt.Sprintf("codebook, finer scale search, centred keys (%d chunks)", r.chunks)
	case strings.Contains(r.k, "+L") || strings.Contains(r.v, "+L"):
		return fmt.Sprintf("kvserve per-layer K/V types, centred keys (%d chunks)", r.chunks)
	case r.keyChannels != "off":
		return fmt.Sprintf("kvserve rotated, centred keys (%d chunks)", r.chunks)
	}
	return fmt.Sprintf("kvserve, rotation %s (%d chunks)", r.rotation, r.chunks)
}

// current drops the rows measured again over more chunks: a kvserve
// setting measured at 10 and at 40 chunks is drawn once, at 40, so the
// chart mixes chunk counts only for settings not yet measured at 40.
func current(rows []row) []row {
	type key struct{ model, k, v, kc, rot, scale, source string }
	most := map[key]int{}
	kf := func(r row) key { return key{r.model, r.k, r.v, r.keyChannels, r.rotation, r.scale, r.source} }
	for _, r := range rows {
		most[kf(r)] = max(most[kf(r)], r.chunks)
	}
	var out []row
	for _, r := range rows {
		if r.chunks == most[kf(r)] {
			out = append(out, r)
		}
	}
	return out
}

func label(r row) string {
	if r.k == r.v {
		return r.k
	}
	return r.k + "/" + r.v
}

var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
	color.RGBA{0xe3, 0x77, 0xc2, 0xff}, color.RGBA{0x7f, 0x7f, 0x7f, 0xff}, color.RGBA{0xbc, 0xbd, 0x22, 0xff},
	color.RGBA{0x17, 0xbe, 0xcf, 0xff}, color.RGBA{0x00, 0x00, 0x00, 0xff},
}

// draw3 writes the PNG: rows of panels for mean KLD, p99 KLD and top-1,
// a column per model.
func draw3(rows []row, w io.Writer) error {
	rows = current(rows)
	var models, names []string
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen["m"+r.model] {
			seen["m"+r.model] = true
			models = append(models, r.model)
		}
		if s := series(r); !seen["s"+s] {
			seen["s"+s] = true
			names = append(names, s)
		}
	}
	sort.Strings(names)
	metrics := []struct {
		name string
		log  bool
		get  func(row) (float64, bool)
	}{
		{"mean KLD", true, func(r row) (float64, bool) { return r.kld, true }},
		{"p99 KLD", true, func(r row) (float64, bool) { return r.p99, r.hasP99 && r.p99 > 0 }},
		{"top-1 agreement (%)", false, func(r row) (float64, bool) { return r.top1, true }},
	}
	plots := make([][]*plot.Plot, len(metrics))
	for i, m := range metrics {
		plots[i] = make([]*plot.Plot, len(models))
		for j, model := range models {
			p := plot.New()
			p.Title.Text = model + ": " + m.name
			p.X.Label.Text = "bits per cached value"
			p.X.Min, p.X.Max = 2.2, 9.4
			p.Y.Label.Text = m.name
			if m.log {
				p.Y.Scale = plot.LogScale{}
				p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
			}
			p.Add(plotter.NewGrid())
			for si, s := range names {
				var xy plotter.XYs
				var labels []string
				for _, r := range rows {
					if r.model != model || series(r) != s {
						continue
					}
					if v, ok := m.get(r); ok {
						xy = append(xy, plotter.XY{X: r.bits, Y: v})
						labels = append(labels, label(r))
					}
				}
				if len(xy) == 0 {
					continue
				}
				sc, err := plotter.NewScatter(xy)
				if err != nil {
					return err
				}
				sc.GlyphStyle.Color = palette[si%len(palette)]
				sc.GlyphStyle.Shape = glyph(si)
				sc.GlyphStyle.Radius = vg.Points(3)
				lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xy, Labels: labels})
				if err != nil {
					return err
				}
				for k := range lb.TextStyle {
					lb.TextStyle[k].Font.Size = font.Length(6)
					lb.TextStyle[k].Color = palette[si%len(palette)]
					lb.TextStyle[k].XAlign = draw.XLeft
				}
				lb.Offset = vg.Point{X: vg.Points(4), Y: vg.Points(-2)}
				p.Add(sc, lb)
				if i == 0 && j == 0 {
					p.Legend.Add(s, sc)
				}
			}
			if i == 0 && j == 0 {
				p.Legend.Left = true
				p.Legend.XOffs, p.Legend.YOffs = vg.Millimeter*3, vg.Millimeter*3
				p.Legend.TextStyle.Font.Size = font.Length(7)
			}
			plots[i][j] = p
		}
	}
	const width, height = 30 * vg.Centimeter, 36 * vg.Centimeter
	img := vgimg.New(width, height)
	dc := draw.New(img)
	t := draw.Tiles{Rows: len(metrics), Cols: len(models), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(plots, t, dc)
	for i := range plots {
		for j := range plots[i] {
			plots[i][j].Draw(canvases[i][j])
		}
	}
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

func glyph(i int) draw.GlyphDrawer {
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{},
		draw.PlusGlyph{}, draw.RingGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}}
	return shapes[i%len(shapes)]
}
