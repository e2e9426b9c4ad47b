package kvcache

import "fmt"

// Recurrent state (hybrid models: Qwen3-Next's Gated DeltaNet layers).
//
// A recurrent layer stores no K and V rows: each sequence has, per such
// layer, a convolution state and a recurrent state of fixed size (f32,
// whatever the cache types: a state is a running sum, and rounding it
// would compound at every token). The cache owns them, accounts them
// apart from the pages, and keeps a few checkpoints of them.
//
// A state cannot be rolled back: it has absorbed the sequence's first
// StatePos tokens. So that a conversation's next turn need not evaluate
// its whole history again, the cache keeps up to Config.Checkpoints copies
// of each sequence's state taken at page boundaries (the forward pass
// splits its runs there and calls Checkpoint): Reusable answers the
// longest prefix a checkpoint (or the live state) can resume, and Truncate
// to that length restores it.

// stateSeq is one sequence's recurrent state.
type stateSeq struct {
	live  []float32 // every recurrent layer's conv then ssm state
	pos   int       // tokens absorbed (−1: invalid, a truncation the state could not follow)
	ckpts []checkpoint
}

// checkpoint is a copy of a sequence's state after its first pos tokens.
type checkpoint struct {
	pos    int
	layers int // recurrent layers copied so far (the forward pass copies layer by layer)
	data   []float32
}

// stateLayout returns the offset of each layer's state in a sequence's
// block (−1 for attention layers) and the block's size.
func (cfg *Config) stateLayout() ([]int, int) {
	off := make([]int, cfg.Layers)
	n := 0
	for l := range off {
		off[l] = -1
		if cfg.Recurrent != nil && cfg.Recurrent[l] {
			off[l] = n
			n += cfg.ConvState + cfg.SSMState
		}
	}
	return off, n
}

func (c *Cache) initState() error {
	cfg := &c.cfg
	if cfg.Recurrent == nil {
		return nil
	}
	if len(cfg.Recurrent) != cfg.Layers {
		return fmt.Errorf("kvcache: %d recurrent-layer flags for %d layers", len(cfg.Recurrent), cfg.Layers)
	}
	if cfg.ConvState < 0 || cfg.SSMState < 0 || cfg.ConvState+cfg.SSMState == 0 || cfg.Checkpoints < 0 || cfg.Checkpoints > 64 {
		return fmt.Errorf("kvcache: recurrent state %d/%d floats, %d checkpoints invalid", cfg.ConvState, cfg.SSMState, cfg.Checkpoints)
	}
	c.stateOff, c.stateN = cfg.stateLayout()
	c.firstKV, c.firstRec = -1, -1
	for l, r := range cfg.Recurrent {
		if !r && c.firstKV < 0 {
			c.firstKV = l
		}
		if r && c.firstRec < 0 {
			c.firstRec = l
		}
		if r {
			c.nRecurrent++
		}
	}
	if c.firstKV < 0 {
		c.firstKV = 0
	}
	c.states = make([]stateSeq, cfg.Seqs)
	for s := range c.states {
		c.states[s].live = make([]float32, c.stateN)
	}
	return nil
}

// Hybrid reports whether the cache holds recurrent layers.
func (c *Cache) Hybrid() bool { return c.states != nil }

// IsRecurrent reports whether layer l is a recurrent layer (no KV rows).
func (c *Cache) IsRecurrent(l int) bool { return c.stateOff != nil && c.stateOff[l] >= 0 }

// State returns seq's convolution and recurrent state of recurrent layer
// l (the cache's memory: the forward pass advances it in place).
func (c *Cache) State(l, seq int) (conv, ssm []float32) {
	o := c.stateOff[l]
	st := c.states[seq].live[o : o+c.cfg.ConvState+c.cfg.SSMState]
	return st[:c.cfg.ConvState], st[c.cfg.ConvState:]
}

// StatePos returns how many tokens seq's state has absorbed (−1 when a
// truncation left it invalid: the sequence must start again at 0).
func (c *Cache) StatePos(seq int) int {
	if c.states == nil {
		return 0
	}
	return c.states[seq].pos
}

// SetStatePos records that seq's state has absorbed n tokens; 0 clears
// the state (a sequence starting again). Checkpoints beyond n are dropped.
func (c *Cache) SetStatePos(seq, n int) {
	st := &c.states[seq]
	if n == 0 {
		clear(st.live)
	}
	st.pos = n
	c.dropCheckpoints(seq, n)
}

// CheckpointEvery is the spacing of state checkpoints in positions (the
// page size), 0 when the cache keeps none.
func (c *Cache) CheckpointEvery() int {
	if c.states == nil || c.cfg.Checkpoints == 0 {
		return 0
	}
	return c.cfg.PageTokens
}

// Checkpoint copies seq's live state of recurrent layer l, which has
// absorbed exactly pos tokens, into the checkpoint at pos. The forward
// pass calls it layer by layer, every position of the batch for a layer
// before the next layer: a checkpoint is made when its first layer
// arrives, replacing the lowest position when Checkpoints are held, and
// none is made below every held one then (it would be the next to go).
func (c *Cache) Checkpoint(l, seq, pos int) {
	if c.CheckpointEvery() == 0 || pos <= 0 {
		return
	}
	st := &c.states[seq]
	var cp *checkpoint
	for i := range st.ckpts {
		if st.ckpts[i].pos == pos {
			cp = &st.ckpts[i]
		}
	}
	if cp == nil {
		if len(st.ckpts) < c.cfg.Checkpoints {
			st.ckpts = append(st.ckpts, checkpoint{data: make([]float32, c.stateN)})
		} else {
			lo := 0
			for i := range st.ckpts {
				if st.ckpts[i].pos < st.ckpts[lo].pos {
					lo = i
				}
			}
			if pos < st.ckpts[lo].pos {
				return
			}
			st.ckpts[lo], st.ckpts[len(st.ckpts)-1] = st.ckpts[len(st.ckpts)-1], st.ckpts[lo]
		}
		cp = &st.ckpts[len(st.ckpts)-1]
		cp.pos, cp.layers = pos, 0
	}
	if l == c.firstRec {
		cp.layers = 0 // taken again (the sequence was cut back and re-evaluated)
	}
	o, n := c.stateOff[l], c.cfg.ConvState+c.cfg.SSMState
	copy(cp.data[o:o+n], st.live[o:o+n])
	cp.layers++
}

// dropCheckpoints forgets seq's checkpoints beyond position n.
func (c *Cache) dropCheckpoints(seq, n int) {
	st := &c.states[seq]
	kept := st.ckpts[:0]
	for _, cp := range st.ckpts {
		if cp.pos <= n {
			kept = append(kept, cp)
		}
	}
	st.ckpts = kept
}

// resumable returns the longest prefix of at most n positions seq's state
// can resume: n itself when the live state holds exactly n tokens, else
// the latest complete checkpoint at or before n, else 0.
func (c *Cache) resumable(seq, n int) int {
	st := &c.states[seq]
	if st.pos == n {
		return n
	}
	best := 0
	for _, cp := range st.ckpts {
		if cp.pos <= n && cp.layers == c.nRecurrent && cp.pos > best {
			best = cp.pos
		}
	}
	return best
}

// truncateState follows Truncate(seq, n): the live state when it holds n
// tokens, else the checkpoint at n restored, else cleared (n = 0) or
// marked invalid.
func (c *Cache) truncateState(seq, n int) {
	st := &c.states[seq]
	switch {
	case st.pos == n:
	case n == 0:
		c.SetStatePos(seq, 0)
	default:
		st.pos = -1
		for _, cp := range st.ckpts {
			if cp.pos == n && cp.layers == c.nRecurrent {
				copy(st.live, cp.data)
				st.pos = n
			}
		}
	}
	c.dropCheckpoints(seq, max(n, 0))
}

// StateBytes returns the bytes of recurrent state the cache holds: every
// sequence's live state and checkpoints (0 for attention-only models).
func (c *Cache) StateBytes() int64 {
	var n int64
	for s := range c.states {
		n += int64(c.stateN) * 4 * int64(1+len(c.states[s].ckpts))
	}
	return n
}

// StateBytesPerSeq returns the bytes of one sequence's live recurrent
// state (convolution and recurrent, every recurrent layer).
func (c *Cache) StateBytesPerSeq() int64 { return int64(c.stateN) * 4 }

// ConvStateBytesPerSeq and SSMStateBytesPerSeq split it.
func (c *Cache) ConvStateBytesPerSeq() int64 { return int64(c.nRecurrent*c.cfg.ConvState) * 4 }

// SSMStateBytesPerSeq is the recurrent (delta rule) part of one sequence's state.
func (c *Cache) SSMStateBytesPerSeq() int64 { return int64(c.nRecurrent*c.cfg.SSMState) * 4 }

// StateCapacity is the most recurrent-state bytes the cache can hold:
// every sequence's live state and all its checkpoints (what the budget
// counts).
func (c *Cache) StateCapacity() int64 {
	return int64(c.stateN) * 4 * int64(c.cfg.Seqs) * int64(1+c.cfg.Checkpoints)
}

// SeqCheckpoints returns the positions of seq's complete checkpoints.
func (c *Cache) SeqCheckpoints(seq int) []int {
	if c.states == nil {
		return nil
	}
	var out []int
	for _, cp := range c.states[seq].ckpts {
		if cp.layers == c.nRecurrent {
			out = append(out, cp.pos)
		}
	}
	return out
}

// StateCapacityFor is StateCapacity for a cache of this shape before it is
// made (the dry run).
func StateCapacityFor(cfg Config) int64 {
	_, n := cfg.stateLayout()
	return int64(n) * 4 * int64(cfg.Seqs) * int64(1+cfg.Checkpoints)
}
