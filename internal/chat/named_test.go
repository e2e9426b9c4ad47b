package chat

import "testing"

// The built-in named templates render what llama.cpp's llama-chat.cpp
// formatter renders for the same conversation (expected strings written
// from that formatter's rules).
func TestNamedTemplates(t *testing.T) {
	msgs := []Message{
		{Role: "system", Content: "Be brief. "},
		{Role: "user", Content: "Hi"},
		{Role: "assistant", Content: " Hello "},
		{Role: "user", Content: "Bye"},
	}
	want := map[string]string{
		"chatml":            "<|im_start|>system\nBe brief. <|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n Hello <|im_end|>\n<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
		"llama3":            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
		"phi3":              "<|system|>\nBe brief. <|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n Hello <|end|>\n<|user|>\nBye<|end|>\n<|assistant|>\n",
		"phi4":              "<|im_start|>system<|im_sep|>Be brief. <|im_end|><|im_start|>user<|im_sep|>Hi<|im_end|><|im_start|>assistant<|im_sep|> Hello <|im_end|><|im_start|>user<|im_sep|>Bye<|im_end|><|im_start|>assistant<|im_sep|>",
		"falcon3":           "<|system|>\nBe brief. \n<|user|>\nHi\n<|assistant|>\n Hello \n<|user|>\nBye\n<|assistant|>\n",
		"zephyr":            "<|system|>\nBe brief. <|endoftext|>\n<|user|>\nHi<|endoftext|>\n<|assistant|>\n Hello <|endoftext|>\n<|user|>\nBye<|endoftext|>\n<|assistant|>\n",
		"gemma":             "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n",
		"mistral-v7":        "[SYSTEM_PROMPT] Be brief. [/SYSTEM_PROMPT][INST] Hi[/INST]  Hello </s>[INST] Bye[/INST]",
		"mistral-v7-tekken": "[SYSTEM_PROMPT]Be brief. [/SYSTEM_PROMPT][INST]Hi[/INST] Hello </s>[INST]Bye[/INST]",
		"deepseek3":         "Be brief. \n\n<｜User｜>Hi<｜Assistant｜> Hello <｜end▁of▁sentence｜><｜User｜>Bye<｜Assistant｜>",
		"llama2":            "[INST] Be brief. \nHi [/INST] Hello </s>[INST] Bye [/INST]",
		"llama2-sys":        "[INST] <<SYS>>\nBe brief. \n<</SYS>>\n\nHi [/INST] Hello </s>[INST] Bye [/INST]",
	}
	for _, name := range NamedList() {
		src, ok, known := Named(name)
		if !ok || !known {
			t.Fatalf("%s: not built in", name)
		}
		tm, err := New(src, "<s>", "</s>")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := tm.Apply(msgs, true, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		w, ok := want[name]
		if !ok {
			t.Errorf("%s: no expected rendering in the test", name)
			continue
		}
		if got != w {
			t.Errorf("%s:\n got %q\nwant %q", name, got, w)
		}
	}
	if _, ok, known := Named("vicuna"); ok || !known {
		t.Errorf("vicuna: ok=%v known=%v, want a known name not built in", ok, known)
	}
	if _, _, known := Named("nonsense"); known {
		t.Error("nonsense is a known name")
	}
}
