"""A qwen3moe transformer in PyTorch, computed the way llama.cpp computes that architecture
(src/models/qwen3moe.cpp), so that the exported GGUF runs identically in swapmoe and llama.cpp.

Per layer:  h = x + Wo · attn(rope(qnorm(Wq·n)), rope(knorm(Wk·n)), Wv·n),  n = rmsnorm(x)·attn_norm
            y = h + moe(rmsnorm(h)·ffn_norm)
attention:  causal, scale 1/sqrt(head_dim), grouped-query (query head i reads kv head
            i // (n_head / n_head_kv)), q/k RMS-normed per head before NEOX rope (rotate the two
            halves of each head, theta_i = pos · base^(-2i/head_dim)).
moe:        p = softmax(Wr·n) over all experts; the top-k experts by p, their weights p renormalised
            to sum 1 (qwen3moe's norm_topk_prob); each expert is SwiGLU: down(silu(gate·n) * up·n).
output:     logits = Wout · rmsnorm(x)·output_norm (untied from the embedding).
"""

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Config:
    n_vocab: int = 4096
    n_ctx: int = 512
    n_embd: int = 128
    n_layer: int = 4
    n_head: int = 4
    n_head_kv: int = 2
    head_dim: int = 32
    n_expert: int = 32
    n_expert_used: int = 2
    n_ff_exp: int = 256
    rope_base: float = 10000.0
    rms_eps: float = 1e-6

    def to_dict(self):
        return asdict(self)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope_neox(x, cos, sin):
    """x: (B, H, T, D); cos/sin: (T, D/2). Rotates (x[i], x[i + D/2]) pairs."""
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Layer(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        E, q, kv = c.n_embd, c.n_head * c.head_dim, c.n_head_kv * c.head_dim
        self.attn_norm = nn.Parameter(torch.ones(E))
        self.wq = nn.Parameter(torch.empty(q, E))
        self.wk = nn.Parameter(torch.empty(kv, E))
        self.wv = nn.Parameter(torch.empty(kv, E))
        self.wo = nn.Parameter(torch.empty(E, q))
        self.q_norm = nn.Parameter(torch.ones(c.head_dim))
        self.k_norm = nn.Parameter(torch.ones(c.head_dim))
        self.ffn_norm = nn.Parameter(torch.ones(E))
        self.router = nn.Parameter(torch.empty(c.n_expert, E))
        # Expert tensors in GGUF order: gate/up (n_expert, n_ff_exp, n_embd), down (n_expert, n_embd, n_ff_exp).
        self.gate = nn.Parameter(torch.empty(c.n_expert, c.n_ff_exp, E))
        self.up = nn.Parameter(torch.empty(c.n_expert, c.n_ff_exp, E))
        self.down = nn.Parameter(torch.empty(c.n_expert, E, c.n_ff_exp))

    @staticmethod
    def causal_mask(T):
        return torch.ones(T, T, dtype=torch.bool).triu(1)

    def attention(self, x, cos, sin):
        c = self.c
        B, T, _ = x.shape
        n = rms_norm(x, self.attn_norm, c.rms_eps)
        q = (n @ self.wq.T).view(B, T, c.n_head, c.head_dim).transpose(1, 2)
        k = (n @ self.wk.T).view(B, T, c.n_head_kv, c.head_dim).transpose(1, 2)
        v = (n @ self.wv.T).view(B, T, c.n_head_kv, c.head_dim).transpose(1, 2)
        q = rope_neox(rms_norm(q, self.q_norm, c.rms_eps), cos, sin)
        k = rope_neox(rms_norm(k, self.k_norm, c.rms_eps), cos, sin)
        rep = c.n_head // c.n_head_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(c.head_dim))  # (B, H, T, T)
        att = att.masked_fill(self.causal_mask(T), float("-inf")).softmax(-1)
        a = att @ v
        return a.transpose(1, 2).reshape(B, T, -1) @ self.wo.T

    def moe(self, x):
        """x: (N, E) -> (out (N, E), aux loss, top-k expert ids (N, k))."""
        c = self.c
        n = rms_norm(x, self.ffn_norm, c.rms_eps)
        probs = (n @ self.router.T).softmax(-1)  # (N, n_expert)
        topv, topi = probs.topk(c.n_expert_used, dim=-1)
        w = topv / topv.sum(-1, keepdim=True)
        flat = topi.reshape(-1)  # (N*k)
        order = torch.sort(flat, stable=True).indices
        tok = order // c.n_expert_used
        counts = torch.bincount(flat, minlength=c.n_expert)
        xs = n[tok]
        # unbind once: indexing the stacked parameter per expert would give every expert a
        # gradient buffer of the full stacked size (32x the work in the backward pass).
        gates, ups, downs = self.gate.unbind(0), self.up.unbind(0), self.down.unbind(0)
        outs, start = [], 0
        for e, cnt in enumerate(counts.tolist()):
            if cnt == 0:
                continue
            xe = xs[start:start + cnt]
            h = F.silu(xe @ gates[e].T) * (xe @ ups[e].T)
            outs.append(h @ downs[e].T)
            start += cnt
        ys = torch.cat(outs) * w.reshape(-1)[order].unsqueeze(1)
        out = torch.zeros_like(x).index_add_(0, tok, ys)
        # Switch-transformer load balancing: n_expert · sum_e (share of assignments to e) · (mean p_e).
        frac = counts.to(x.dtype) / flat.numel()
        aux = c.n_expert * (frac * probs.mean(0)).sum()
        return out, aux, topi

    def forward(self, x, cos, sin):
        x = x + self.attention(x, cos, sin)
        B, T, E = x.shape
        m, aux, topi = self.moe(x.reshape(B * T, E))
        return x + m.view(B, T, E), aux, topi.view(B, T, -1)


class MoeLM(nn.Module):
    def __init__(self, c: Config):
        super().__init__()
        self.c = c
        self.tok_embd = nn.Parameter(torch.empty(c.n_vocab, c.n_embd))
        self.layers = nn.ModuleList([Layer(c) for _ in range(c.n_layer)])
        self.output_norm = nn.Parameter(torch.ones(c.n_embd))
        self.output = nn.Parameter(torch.empty(c.n_vocab, c.n_embd))
        inv = c.rope_base ** (-torch.arange(0, c.head_dim, 2, dtype=torch.float64) / c.head_dim)
        ang = torch.arange(c.n_ctx, dtype=torch.float64)[:, None] * inv[None, :]
        self.register_buffer("cos", ang.cos().float(), persistent=False)
        self.register_buffer("sin", ang.sin().float(), persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        c = self.c
        std = 0.02
        out_std = std / math.sqrt(2 * c.n_layer)
        nn.init.normal_(self.tok_embd, std=std)
        nn.init.normal_(self.output, std=std)
        for L in self.layers:
            for p in (L.wq, L.wk, L.wv, L.gate, L.up):
                nn.init.normal_(p, std=std)
            nn.init.normal_(L.router, std=std)
            nn.init.normal_(L.wo, std=out_std)
            nn.init.normal_(L.down, std=out_std)

    def forward(self, ids, return_routes=False):
        """ids: (B, T) -> logits (B, T, V), mean aux loss, [per-layer top-k ids (B, T, k)]."""
        T = ids.shape[1]
        x = self.tok_embd[ids]
        cos, sin = self.cos[:T], self.sin[:T]
        aux, routes = 0.0, []
        for L in self.layers:
            x, a, topi = L(x, cos, sin)
            aux = aux + a
            routes.append(topi)
        logits = rms_norm(x, self.output_norm, self.c.rms_eps) @ self.output.T
        aux = aux / len(self.layers)
        return (logits, aux, routes) if return_routes else (logits, aux)

    def gguf_tensors(self):
        """(name, numpy array) in GGUF naming; numpy shapes are reversed ggml ne."""
        t = [("token_embd.weight", self.tok_embd), ("output_norm.weight", self.output_norm),
             ("output.weight", self.output)]
        for i, L in enumerate(self.layers):
            p = f"blk.{i}."
            t += [(p + "attn_norm.weight", L.attn_norm), (p + "attn_q.weight", L.wq),
                  (p + "attn_k.weight", L.wk), (p + "attn_v.weight", L.wv),
                  (p + "attn_output.weight", L.wo), (p + "attn_q_norm.weight", L.q_norm),
                  (p + "attn_k_norm.weight", L.k_norm), (p + "ffn_norm.weight", L.ffn_norm),
                  (p + "ffn_gate_inp.weight", L.router), (p + "ffn_gate_exps.weight", L.gate),
                  (p + "ffn_down_exps.weight", L.down), (p + "ffn_up_exps.weight", L.up)]
        return [(n, p.detach().float().cpu().numpy()) for n, p in t]

    def gguf_kv(self):
        c = self.c
        a = "qwen3moe."
        return [
            ("general.architecture", "qwen3moe"),
            (a + "context_length", c.n_ctx),
            (a + "embedding_length", c.n_embd),
            (a + "block_count", c.n_layer),
            (a + "feed_forward_length", c.n_ff_exp),
            (a + "attention.head_count", c.n_head),
            (a + "attention.head_count_kv", c.n_head_kv),
            (a + "attention.key_length", c.head_dim),
            (a + "attention.value_length", c.head_dim),
            (a + "attention.layer_norm_rms_epsilon", float(c.rms_eps)),
            (a + "rope.freq_base", float(c.rope_base)),
            (a + "rope.dimension_count", c.head_dim),
            (a + "expert_count", c.n_expert),
            (a + "expert_used_count", c.n_expert_used),
            (a + "expert_feed_forward_length", c.n_ff_exp),
        ]
