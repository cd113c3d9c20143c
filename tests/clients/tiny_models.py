"""Tiny, deterministic chat models for a real OpenAI-compatible server.

Each model is a one-layer Llama whose attention and MLP are zeroed, so the
residual stream is the token's one-hot embedding and the output head is a
table of "next token" choices: after `<|assistant|>` it always says
`<think> i should count </think> the answer is three <eos>`. Built locally in
a second, no hub download. Three variants:
- `tiny-think-tags`: reasoning inside <think>...</think> in the content;
- `tiny-r1-prefilled`: the chat template opens <think> itself (as
  DeepSeek-R1's does), so the content starts mid-reasoning;
- `tiny-reasoning`: the tokenizer has a response template, so the server
  (`transformers serve`) returns the reasoning as `reasoning_content`.
"""

from __future__ import annotations

import itertools
from pathlib import Path

CHAIN = [
    "<|assistant|>",
    "<think>",
    "i",
    "should",
    "count",
    "</think>",
    "the",
    "answer",
    "is",
    "three",
    "<eos>",
]
WORDS = [
    "<unk>", "<pad>", "<eos>", "<|system|>", "<|user|>", "<|assistant|>", "<think>", "</think>",
    "i", "should", "count", "the", "answer", "is", "three",
    "how", "many", "r", "in", "strawberry", "?", "you", "are", "a", "helpful", "ai", "assistant", "9.9",
]  # fmt: skip
REASONING = "i should count"
ANSWER = "the answer is three"

_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{{ prefill }}{% endif %}"
)
_RESPONSE_TEMPLATE = {
    "start_anchor": "<|assistant|>",
    "fields": {
        "reasoning_content": {"open": "<think>", "close": "</think>", "content": "text"},
        "content": {"close": "<eos>", "content": "text"},
    },
}


def build(out: Path, name: str, prefill: str = "", response_template: dict | None = None) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {word: index for index, word in enumerate(WORDS)}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##")  # joins words with spaces
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>"
    )
    fast.add_special_tokens(
        {"additional_special_tokens": ["<|system|>", "<|user|>", "<|assistant|>"]}
    )
    fast.chat_template = _TEMPLATE.replace("{{ prefill }}", prefill)
    if response_template:
        fast.response_template = response_template

    size = len(WORDS)
    assert size % 2 == 0, "rotary embeddings need an even head size: add a word"
    config = LlamaConfig(
        vocab_size=size,
        hidden_size=size,
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=1,
        num_key_value_heads=1,
        head_dim=size,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=vocab["<eos>"],
        pad_token_id=vocab["<pad>"],
    )
    model = LlamaForCausalLM(config)
    following = {vocab[a]: vocab[b] for a, b in itertools.pairwise(CHAIN)}
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.model.embed_tokens.weight.copy_(torch.eye(size))
        model.model.norm.weight.fill_(1.0)
        for layer in model.model.layers:
            layer.input_layernorm.weight.fill_(1.0)
            layer.post_attention_layernorm.weight.fill_(1.0)
        head = torch.zeros(size, size)
        for token in range(size):
            head[following.get(token, vocab["<eos>"]), token] = 10.0
        model.lm_head.weight.copy_(head)
    model.generation_config.eos_token_id = vocab["<eos>"]
    model.generation_config.do_sample = False
    path = out / name
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def build_all(out: Path) -> dict[str, Path]:
    return {
        "think-tags": build(out, "tiny-think-tags"),
        "r1-prefilled": build(out, "tiny-r1-prefilled", prefill=" <think>"),
        "reasoning": build(out, "tiny-reasoning", response_template=_RESPONSE_TEMPLATE),
    }
