package sample

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
)

type fixStage struct {
	Type    string
	A, B, C float32
	N, M    int
}

type fixCase struct {
	Name     string
	Ctx      int
	History  []int
	Breakers [][]int32
	Stages   []fixStage
	Out      [][3]float64
}

// TestChainMatchesLlamaCpp replays testdata/llamacpp/samplers.json: the
// candidates (ids, logits, probabilities) llama.cpp's own samplers leave
// from fixed logits, stage by stage (written by
// scripts/sampler-fixtures.sh from the reference build).
func TestChainMatchesLlamaCpp(t *testing.T) {
	b, err := os.ReadFile("../../testdata/llamacpp/samplers.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Logits []float32
		Cases  []fixCase
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	for _, c := range fx.Cases {
		s := &Sampler{vocab: len(fx.Logits)}
		a := s.candidates(fx.Logits, nil)
		for _, st := range c.Stages {
			switch st.Type {
			case "top_k":
				a.topK(st.N)
			case "top_p":
				a.topP(st.A, st.N)
			case "min_p":
				a.minP(st.A, st.N)
			case "typical":
				a.typical(st.A, st.N, &s.tbuf, &s.scores)
			case "temp":
				a.tempExt(st.A, st.B, st.C)
			case "top_n_sigma":
				a.topNSigma(st.A)
			case "xtc":
				var rng = s.xrng
				a.xtc(st.A, st.B, st.N, &rng)
			case "bias":
				a.bias([]LogitBias{{11, -100}, {5, 2.5}, {40, float32(math.Inf(-1))}})
			case "penalties":
				p := plain(1, 1)
				p.RepeatPenalty, p.FrequencyPenalty, p.PresencePenalty, p.RepeatLastN = st.A, st.B, st.C, st.N
				ps := mustNew(t, p, len(fx.Logits))
				for _, h := range c.History {
					ps.Accept(h)
				}
				ps.compact()
				ps.penalizeArr(a)
			case "dry":
				p := plain(1, 1)
				p.DRYMultiplier, p.DRYBase, p.DRYAllowedLength, p.DRYPenaltyLastN, p.ContextSize = st.A, st.B, st.N, st.M, c.Ctx
				p.DRYBreakers = Breakers{}
				for _, br := range c.Breakers {
					p.DRYBreakers.add(br[0], br[1:])
				}
				ds := mustNew(t, p, len(fx.Logits))
				for _, h := range c.History {
					ds.Accept(h)
				}
				ds.dry(a)
			default:
				t.Fatalf("%s: unknown stage %q", c.Name, st.Type)
			}
		}
		got := slices.Clone(a.d)
		slices.SortFunc(got, func(x, y tok) int { return int(x.id - y.id) })
		want := slices.Clone(c.Out)
		slices.SortFunc(want, func(x, y [3]float64) int { return int(x[0] - y[0]) })
		if len(got) != len(want) {
			t.Errorf("%s: %d candidates, llama.cpp leaves %d\n got %v\nwant %v", c.Name, len(got), len(want), got, want)
			continue
		}
		for i := range got {
			w := want[i]
			g := got[i]
			if int(g.id) != int(w[0]) || !close32(g.logit, w[1]) || !close32(g.p, w[2]) {
				t.Errorf("%s: candidate %d = {%d %g %g}, llama.cpp {%v %v %v}", c.Name, i, g.id, g.logit, g.p, w[0], w[1], w[2])
			}
		}
	}
}

func close32(g float32, w float64) bool {
	if w <= -1e38 { // the fixture's -Inf
		return math.IsInf(float64(g), -1)
	}
	return math.Abs(float64(g)-w) <= 2e-6*math.Max(1, math.Abs(w))
}

func TestParseStages(t *testing.T) {
	st, err := ParseStages([]string{"penalties", "top-k", "nucleus", "typ", "min_p", "temp", "dry", "xtc", "top_n_sigma"})
	if err != nil || !slices.Equal(StageNames(st), []string{"penalties", "top_k", "top_p", "typ_p", "min_p", "temperature", "dry", "xtc", "top_n_sigma"}) {
		t.Errorf("ParseStages: %v %v", StageNames(st), err)
	}
	st, err = ParseStageChars("edskypmxt")
	if err != nil || !slices.Equal(st, DefaultStages()) {
		t.Errorf("ParseStageChars: %v %v", st, err)
	}
	if _, err := ParseStages([]string{"infill"}); err == nil {
		t.Error("infill accepted")
	}
	if _, err := ParseStageChars("kq"); err == nil {
		t.Error("q accepted")
	}
}

// DRY's breakers: a token containing a breaker breaks alone; a token
// ending with a breaker's start heads a sequence whose tail is the
// tokenized rest.
func TestDRYBreakers(t *testing.T) {
	vocab := []string{"a", "b:", "c", "*x", "\"q", "xy", "q"}
	tokenize := func(s string) []int {
		var out []int
		for _, r := range s {
			out = append(out, slices.Index(vocab, string(r)))
		}
		return out
	}
	b := DRYBreakers([]string{":", "xyq"}, len(vocab), func(i int) string { return vocab[i] }, tokenize)
	if len(b[1]) != 1 || len(b[1][0]) != 0 {
		t.Errorf("b: breaks alone: %v", b[1])
	}
	// "*x" ends with "x", the start of "xyq": the tail is tokenize("yq").
	if len(b[3]) != 1 || !slices.Equal(b[3][0], []int32{-1, 6}) {
		t.Errorf("*x: %v", b[3])
	}
	if _, ok := b[0]; ok {
		t.Error("a is a breaker")
	}
}

// The full chain as a Sampler: a banned token is never drawn, mirostat
// moves mu toward the target surprise, and XTC with probability 1 never
// draws the most probable token when others pass the threshold.
func TestChainSampler(t *testing.T) {
	logits := randLogits(3, 200, 2)
	best := argmax(logits)
	p := DefaultParams()
	p.Seed = 7
	p.LogitBias = []LogitBias{{int32(best), float32(math.Inf(-1))}}
	s := mustNew(t, p, len(logits))
	for range 200 {
		if tok := s.Sample(logits); tok == best {
			t.Fatal("a banned token was drawn")
		}
	}
	p = DefaultParams()
	p.Seed, p.Mirostat, p.MirostatTau, p.MirostatEta = 3, 2, 3, 0.1
	s = mustNew(t, p, len(logits))
	mu0 := s.mu
	for range 50 {
		s.Sample(logits)
	}
	if s.mu == mu0 || math.IsNaN(float64(s.mu)) {
		t.Errorf("mirostat 2: mu %v did not move from %v", s.mu, mu0)
	}
	p = DefaultParams()
	p.Seed, p.Mirostat = 3, 1
	s = mustNew(t, p, len(logits))
	for range 20 {
		if tok := s.Sample(logits); tok < 0 || tok >= len(logits) {
			t.Fatalf("mirostat 1 drew %d", tok)
		}
	}
	p = DefaultParams()
	p.Seed, p.XTCProbability, p.XTCThreshold, p.TopK, p.MinP = 9, 1, 0.01, 0, 0
	s = mustNew(t, p, len(logits))
	for range 100 {
		if s.Sample(logits) == best {
			t.Fatal("XTC drew the top token")
		}
	}
	// Post-sampling probabilities: the chain's final candidates.
	p = DefaultParams()
	p.Seed, p.PostSamplingProbs, p.TopK = 5, true, 3
	s = mustNew(t, p, len(logits))
	tok := s.Sample(logits)
	pp := s.PostProbs(10, tok)
	sum := 0.0
	for _, x := range pp {
		sum += x.Prob
	}
	if len(pp) == 0 || len(pp) > 3 || math.Abs(sum-1) > 1e-5 || !slices.ContainsFunc(pp, func(x TokenProb) bool { return x.ID == tok }) {
		t.Errorf("post-sampling probs %v (chosen %d)", pp, tok)
	}
}
