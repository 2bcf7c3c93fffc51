// MLA attention (absorbed, latent-only cache) against a naive reference that decompresses
// keys and values per head in double precision and runs standard multi-head attention:
//   K[h][t] = [ k_b[h]^T c_t | k_pe_t ],  V[h][t] = v_b[h] c_t,  q[h] = [q_nope | rope(q_pe)]
// Both must agree for several tokens in a row, with and without the low-rank q, with and
// without YaRN. The F32 cache mode must match to ~1e-5; the llama.cpp-like F16 mode and
// quantized k_b/v_b within their rounding.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "arch/arch.h"
#include "ops/mla_legacy.h"
#include "model/attention_mla.h"
#include "util/fp16.h"
#include "quant/quant.h"
#include "util/error.h"
#include "util/thread_pool.h"

namespace swapmoe {
namespace {

struct Mat {
  int64_t cols = 0, rows = 0;
  std::vector<float> f;       // dequantized values (what the reference uses)
  std::vector<uint8_t> bytes; // stored form
  GgmlType type = GgmlType::F32;
  MatrixRef ref() const { return MatrixRef{type, cols, rows, bytes.data()}; }
};

Mat rand_mat(std::mt19937& rng, int64_t cols, int64_t rows, GgmlType type = GgmlType::F32) {
  Mat m;
  m.cols = cols;
  m.rows = rows;
  m.type = type;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const float s = 1.0f / std::sqrt(static_cast<float>(cols));
  m.f.resize(static_cast<size_t>(cols * rows));
  for (auto& v : m.f) v = u(rng) * s * 1.7f;
  if (type == GgmlType::F32) {
    m.bytes.resize(m.f.size() * 4);
    std::memcpy(m.bytes.data(), m.f.data(), m.bytes.size());
  } else {
    const QuantTraits& t = quant_traits(type);
    const size_t rb = ggml_row_size(type, cols);
    m.bytes.resize(rb * static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) {
      t.from_float_ref(m.f.data() + r * cols, m.bytes.data() + r * rb, cols);
      t.to_float_ref(m.bytes.data() + r * rb, m.f.data() + r * cols, cols);
    }
  }
  return m;
}

std::vector<float> rand_vec(std::mt19937& rng, int64_t n, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = u(rng);
  return v;
}

std::vector<double> mv(const Mat& m, const std::vector<double>& x, int64_t row0 = 0, int64_t nrows = -1) {
  if (nrows < 0) nrows = m.rows;
  std::vector<double> y(static_cast<size_t>(nrows));
  for (int64_t r = 0; r < nrows; ++r) {
    double s = 0;
    for (int64_t c = 0; c < m.cols; ++c) s += double(m.f[(row0 + r) * m.cols + c]) * x[c];
    y[r] = s;
  }
  return y;
}

std::vector<double> rms(const std::vector<double>& x, const std::vector<float>& w, double eps) {
  double ss = 0;
  for (double v : x) ss += v * v;
  const double sc = 1.0 / std::sqrt(ss / double(x.size()) + eps);
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * sc * w[i];
  return y;
}

// NORM (adjacent pairs) rotation with YaRN, in double, on v[0..n).
void rope_norm_d(const RopeParams& p, double* v, int64_t pos) {
  const double n = double(p.n_rot);
  auto corr = [&](double turns) {
    return n * std::log(double(p.n_ctx_orig) / (turns * 2 * M_PI)) / (2 * std::log(double(p.freq_base)));
  };
  const double lo = std::max(0.0, std::floor(corr(p.beta_fast))), hi = std::min(n - 1, std::ceil(corr(p.beta_slow)));
  for (int64_t i = 0; i < p.n_rot / 2; ++i) {
    const double te = double(pos) * std::pow(double(p.freq_base), -2.0 * i / n);
    double th = p.freq_scale * te, mag = p.attn_factor;
    if (p.ext_factor != 0) {
      const double ramp = (1 - std::min(1.0, std::max(0.0, (i - lo) / std::max(0.001, hi - lo)))) * p.ext_factor;
      th = th * (1 - ramp) + te * ramp;
      mag *= 1 + 0.1 * std::log(1.0 / p.freq_scale);
    }
    const double c = std::cos(th) * mag, s = std::sin(th) * mag;
    const double x0 = v[2 * i], x1 = v[2 * i + 1];
    v[2 * i] = x0 * c - x1 * s;
    v[2 * i + 1] = x0 * s + x1 * c;
  }
}

struct Model {
  ModelConfig cfg;
  MlaParams p;
  Mat q_a, q_b, q, kv_a, k_b, v_b, out;
  std::vector<float> q_a_norm, kv_a_norm;
  MlaLayerWeights w;
};

Model make_model(uint32_t seed, int64_t q_lora_rank, bool yarn, GgmlType kv_b_type = GgmlType::F32,
                 int64_t kv_lora_rank = 64) {
  std::mt19937 rng(seed);
  Model m;
  ModelConfig& c = m.cfg;
  c.arch = arch_spec("deepseek2").features;
  c.rope_type = RopeType::Norm;
  c.n_embd = 64;
  c.n_head = 4;
  c.n_head_kv = 4;
  c.q_lora_rank = q_lora_rank;
  c.kv_lora_rank = kv_lora_rank;  // multiples of 32 so Q8_0 k_b/v_b rows fit (256 for k-quants)
  c.n_rot = 16;
  c.head_dim_k_mla = 32 + 16;  // nope 32
  c.head_dim_v_mla = 32;
  c.rms_eps = 1e-6f;
  c.n_ctx_train = 4096;
  c.rope_orig_ctx = 64;
  if (yarn) {
    c.rope_scaling = RopeScaling::Yarn;
    c.rope_scaling_factor = 40.0f;
    c.rope_yarn_log_mul = 0.707f;
  }
  m.p = mla_params(c);
  const int64_t H = c.n_head, hk = c.head_dim_k_mla, R = c.kv_lora_rank, nope = hk - c.n_rot;
  if (q_lora_rank > 0) {
    m.q_a = rand_mat(rng, c.n_embd, q_lora_rank);
    m.q_b = rand_mat(rng, q_lora_rank, H * hk);
    m.q_a_norm = rand_vec(rng, q_lora_rank, 0.5f, 1.5f);
    m.w.q_a = m.q_a.ref();
    m.w.q_b = m.q_b.ref();
    m.w.q_a_norm = m.q_a_norm.data();
  } else {
    m.q = rand_mat(rng, c.n_embd, H * hk);
    m.w.q = m.q.ref();
  }
  m.kv_a = rand_mat(rng, c.n_embd, R + c.n_rot);
  m.kv_a_norm = rand_vec(rng, R, 0.5f, 1.5f);
  m.k_b = rand_mat(rng, nope, R * H, kv_b_type);
  m.v_b = rand_mat(rng, R, c.head_dim_v_mla * H, kv_b_type);
  m.out = rand_mat(rng, H * c.head_dim_v_mla, c.n_embd);
  m.w.kv_a_mqa = m.kv_a.ref();
  m.w.kv_a_norm = m.kv_a_norm.data();
  m.w.k_b = m.k_b.ref();
  m.w.v_b = m.v_b.ref();
  m.w.out = m.out.ref();
  return m;
}

// Naive MHA over decompressed keys/values. Keeps its own history of latents and rope keys.
struct Reference {
  const Model& m;
  std::vector<std::vector<double>> c_hist, kpe_hist;
  // When set, keys and values are decompressed straight from the legacy attn_kv_b
  // [R, H * (nope + dv)] instead of k_b / v_b.
  const Mat* kv_b = nullptr;

  std::vector<double> step(const std::vector<float>& xf, int64_t pos) {
    const auto& c = m.cfg;
    const int64_t H = c.n_head, hk = c.head_dim_k_mla, R = c.kv_lora_rank, nr = c.n_rot, nope = hk - nr;
    const int64_t dv = c.head_dim_v_mla;
    std::vector<double> x(xf.begin(), xf.end());
    std::vector<double> q = c.q_lora_rank > 0 ? mv(m.q_b, rms(mv(m.q_a, x), m.q_a_norm, c.rms_eps)) : mv(m.q, x);
    std::vector<double> kv = mv(m.kv_a, x);
    std::vector<double> lat(kv.begin(), kv.begin() + R), kpe(kv.begin() + R, kv.end());
    lat = rms(lat, m.kv_a_norm, c.rms_eps);
    rope_norm_d(m.p.rope, kpe.data(), pos);
    c_hist.push_back(lat);
    kpe_hist.push_back(kpe);
    for (int64_t h = 0; h < H; ++h) rope_norm_d(m.p.rope, q.data() + h * hk + nope, pos);

    std::vector<double> heads(static_cast<size_t>(H * dv), 0.0);
    const int64_t n = static_cast<int64_t>(c_hist.size());
    for (int64_t h = 0; h < H; ++h) {
      std::vector<double> sc(static_cast<size_t>(n));
      double mx = -INFINITY;
      for (int64_t t = 0; t < n; ++t) {
        double s = 0;
        for (int64_t j = 0; j < nope; ++j) {  // k_nope[j] = sum_r k_b[h][r][j] c_t[r]
          double kj = 0;
          if (kv_b)
            for (int64_t r = 0; r < R; ++r) kj += double(kv_b->f[(h * (nope + dv) + j) * R + r]) * c_hist[t][r];
          else
            for (int64_t r = 0; r < R; ++r) kj += double(m.k_b.f[(h * R + r) * nope + j]) * c_hist[t][r];
          s += q[h * hk + j] * kj;
        }
        for (int64_t j = 0; j < nr; ++j) s += q[h * hk + nope + j] * kpe_hist[t][j];
        sc[t] = s * m.p.kq_scale;
        mx = std::max(mx, sc[t]);
      }
      double sum = 0;
      for (auto& s : sc) { s = std::exp(s - mx); sum += s; }
      for (int64_t t = 0; t < n; ++t) {
        const auto vt = kv_b ? mv(*kv_b, c_hist[t], h * (nope + dv) + nope, dv)  // V[h][t] = v_b[h] c_t
                             : mv(m.v_b, c_hist[t], h * dv, dv);
        for (int64_t d = 0; d < dv; ++d) heads[h * dv + d] += sc[t] / sum * vt[d];
      }
    }
    return mv(m.out, heads);
  }
};

// Runs n_tok tokens through both; returns the largest |got - want| / max|want| seen.
double run_compare(const Model& m, MlaCache::Precision prec, int n_tok, int threads, uint32_t seed,
                   std::vector<std::vector<float>>* outs = nullptr, const Mat* kv_b = nullptr) {
  std::mt19937 rng(seed);
  ThreadPool pool(threads);
  MlaCache cache(2, 16, m.cfg.kv_lora_rank, m.cfg.n_rot, prec);
  Reference ref{m, {}, {}, kv_b};
  double worst = 0;
  for (int t = 0; t < n_tok; ++t) {
    auto x = rand_vec(rng, m.cfg.n_embd, -1.0f, 1.0f);
    std::vector<float> got(static_cast<size_t>(m.cfg.n_embd));
    mla_attention(m.p, m.w, cache, 1, x.data(), t, got.data(), pool);
    auto want = ref.step(x, t);
    double mx = 0, err = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      mx = std::max(mx, std::abs(want[i]));
      err = std::max(err, std::abs(got[i] - want[i]));
    }
    worst = std::max(worst, err / mx);
    if (outs) outs->push_back(got);
  }
  return worst;
}

TEST(Mla, AbsorbedMatchesNaiveF32LowRankQ) {
  auto m = make_model(1, 48, false);
  EXPECT_LT(run_compare(m, MlaCache::Precision::F32, 8, 1, 11), 1e-5);
}

TEST(Mla, AbsorbedMatchesNaiveF32PlainQ) {
  auto m = make_model(2, 0, false);
  EXPECT_LT(run_compare(m, MlaCache::Precision::F32, 8, 2, 12), 1e-5);
}

TEST(Mla, AbsorbedMatchesNaiveF32Yarn) {
  auto m = make_model(3, 48, true);
  EXPECT_LT(run_compare(m, MlaCache::Precision::F32, 8, 3, 13), 1e-5);
}

TEST(Mla, F16CacheWithinRounding) {
  // F16 cache, F16 query and F16 probabilities: relative errors of a few 1e-4 each.
  auto m = make_model(4, 48, true);
  const double e = run_compare(m, MlaCache::Precision::F16, 8, 2, 14);
  EXPECT_LT(e, 5e-3);
  EXPECT_GT(e, 0.0);  // the roundings are really applied
}

TEST(Mla, QuantizedKvB) {
  // Q8_0 k_b/v_b: the reference uses the dequantized weights; the remaining error is the
  // Q8_0 quantization of the activations (q_nope and the latent outputs).
  auto m = make_model(5, 0, false, GgmlType::Q8_0);
  EXPECT_LT(run_compare(m, MlaCache::Precision::F32, 6, 2, 15), 2e-2);
}

TEST(Mla, ThreadCountDoesNotChangeBits) {
  auto m = make_model(6, 48, true);
  std::vector<std::vector<float>> a, b;
  run_compare(m, MlaCache::Precision::F16, 5, 1, 16, &a);
  run_compare(m, MlaCache::Precision::F16, 5, 4, 16, &b);
  ASSERT_EQ(a.size(), b.size());
  for (size_t t = 0; t < a.size(); ++t)
    for (size_t i = 0; i < a[t].size(); ++i) ASSERT_EQ(a[t][i], b[t][i]) << "token " << t << " index " << i;
}

TEST(Mla, CacheRoundTrip) {
  MlaCache c16(1, 3, 4, 2), c32(1, 3, 4, 2, MlaCache::Precision::F32);
  const float row[6] = {1.0f, 0.1f, -2.5f, 3.14159f, 1e-3f, 65504.0f};
  float back[6];
  c16.store(0, 2, row);
  c16.load(0, 2, back);
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_NE(back[1], 0.1f);  // rounded to half
  EXPECT_NEAR(back[1], 0.1f, 1e-4f);
  EXPECT_EQ(back[5], 65504.0f);
  c32.store(0, 2, row);
  c32.load(0, 2, back);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(back[i], row[i]);
  EXPECT_EQ(c16.bytes(), 3u * 6u * 2u);
  EXPECT_THROW(c16.store(0, 3, row), Error);
  EXPECT_THROW(c16.store(1, 0, row), Error);
}

TEST(Mla, KqScale) {
  ModelConfig c;
  c.arch = arch_spec("deepseek2").features;
  c.head_dim_k_mla = 192;
  c.n_rot = 64;
  EXPECT_FLOAT_EQ(mla_kq_scale(c), 1.0f / std::sqrt(192.0f));
  // DeepSeek-V2: YaRN factor 40, mscale_all_dim 0.707 -> softmax scale mscale^2 / sqrt(192)
  // with mscale = 1 + 0.1 * 0.707 * ln 40 (the value DeepSeek's reference code uses).
  c.rope_scaling = RopeScaling::Yarn;
  c.rope_scaling_factor = 40.0f;
  c.rope_yarn_log_mul = 0.707f;
  c.n_ctx_train = 163840;
  c.rope_orig_ctx = 4096;
  const double ms = 1 + 0.1 * 0.707 * std::log(40.0);
  EXPECT_NEAR(mla_kq_scale(c), ms * ms / std::sqrt(192.0), 1e-6);
}

TEST(Mla, RejectsBadShapes) {
  auto m = make_model(7, 0, false);
  ThreadPool pool(1);
  MlaCache cache(1, 4, m.cfg.kv_lora_rank, m.cfg.n_rot);
  std::vector<float> x(64, 0.1f), out(64);
  auto w = m.w;
  w.k_b.rows -= 1;
  EXPECT_THROW(mla_attention(m.p, w, cache, 0, x.data(), 0, out.data(), pool), Error);
  w = m.w;
  w.kv_a_norm = nullptr;
  EXPECT_THROW(mla_attention(m.p, w, cache, 0, x.data(), 0, out.data(), pool), Error);
  EXPECT_THROW(mla_attention(m.p, m.w, cache, 0, x.data(), 4, out.data(), pool), Error);
  MlaCache wrong(1, 4, m.cfg.kv_lora_rank + 1, m.cfg.n_rot);
  EXPECT_THROW(mla_attention(m.p, m.w, wrong, 0, x.data(), 0, out.data(), pool), Error);
  ModelConfig q = m.cfg;
  q.arch = arch_spec("qwen3moe").features;
  EXPECT_THROW(mla_params(q), Error);
}

}  // namespace
}  // namespace swapmoe

// ---- The legacy layout: attn_k_b / attn_v_b derived from attn_kv_b (ops/mla_legacy.h) ----

namespace swapmoe {
namespace {

struct Legacy {
  MlaLegacyShape s;
  Mat kv_b;  // [R, H * (nope + dv)] in the source type, f = its dequantized values
  GgmlType k_type = GgmlType::F32;
  std::vector<uint8_t> k_b, v_b;
};

Legacy derive(std::mt19937& rng, MlaLegacyShape s, GgmlType src, GgmlType k_type, ThreadPool* pool) {
  Legacy l;
  l.s = s;
  l.kv_b = rand_mat(rng, s.kv_lora_rank, s.n_head * (s.nope + s.head_dim_v), src);
  l.k_type = k_type;
  l.k_b.resize(mla_legacy_k_b_bytes(s, k_type));
  l.v_b.resize(mla_legacy_v_b_bytes(s, src));
  mla_legacy_derive(s, src, l.kv_b.bytes.data(), k_type, l.k_b.data(), l.v_b.data(), pool);
  return l;
}

// k_b row h*R + r, column j must be key row j of head h at latent index r, encoded in k_type
// exactly as the reference encoder encodes that column; v_b must be the value rows' bytes.
void expect_layout(const Legacy& l) {
  const auto& s = l.s;
  const int64_t R = s.kv_lora_rank, nope = s.nope, dv = s.head_dim_v, ph = nope + dv;
  const size_t k_row = ggml_row_size(l.k_type, nope), src_row = ggml_row_size(l.kv_b.type, R);
  std::vector<float> col(static_cast<size_t>(nope)), got(static_cast<size_t>(nope));
  std::vector<uint8_t> want(k_row);
  for (int64_t h = 0; h < s.n_head; ++h) {
    for (int64_t r = 0; r < R; ++r) {
      for (int64_t j = 0; j < nope; ++j) col[j] = l.kv_b.f[static_cast<size_t>((h * ph + j) * R + r)];
      const uint8_t* row = l.k_b.data() + static_cast<size_t>(h * R + r) * k_row;
      if (l.k_type == GgmlType::F32) {
        std::memcpy(got.data(), row, k_row);
        for (int64_t j = 0; j < nope; ++j) ASSERT_EQ(got[j], col[j]) << "head " << h << " r " << r << " j " << j;
      } else {
        quant_traits(l.k_type).from_float_ref(col.data(), want.data(), nope);
        ASSERT_EQ(std::memcmp(row, want.data(), k_row), 0) << "head " << h << " r " << r;
      }
    }
    for (int64_t d = 0; d < dv; ++d)
      ASSERT_EQ(std::memcmp(l.v_b.data() + static_cast<size_t>(h * dv + d) * src_row,
                            l.kv_b.bytes.data() + static_cast<size_t>(h * ph + nope + d) * src_row, src_row),
                0)
          << "head " << h << " value row " << d;
  }
}

TEST(MlaLegacy, DerivedTensorsMatchTheLayout) {
  const MlaLegacyShape s{256, 3, 64, 32};
  ThreadPool pool(3);
  for (GgmlType src : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_1,
                       GgmlType::Q2_K, GgmlType::Q3_K, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K,
                       // unsloth's dynamic quants of the legacy files use i-quants too (the ones
                       // swapmoe can write without an importance matrix)
                       GgmlType::IQ4_NL, GgmlType::IQ4_XS}) {
    for (GgmlType kt : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0, mla_legacy_k_b_type(src)}) {
      SCOPED_TRACE(std::string(ggml_type_name(src)) + " -> k_b " + ggml_type_name(kt));
      std::mt19937 rng(static_cast<uint32_t>(src) * 31 + static_cast<uint32_t>(kt));
      const Legacy l = derive(rng, s, src, kt, &pool);
      expect_layout(l);
      // The thread count does not change a byte.
      std::vector<uint8_t> k1(l.k_b.size()), v1(l.v_b.size());
      mla_legacy_derive(s, src, l.kv_b.bytes.data(), kt, k1.data(), v1.data(), nullptr);
      EXPECT_EQ(k1, l.k_b);
      EXPECT_EQ(v1, l.v_b);
    }
  }
}

TEST(MlaLegacy, ChosenTypeKeepsFloatSourcesExact) {
  EXPECT_EQ(mla_legacy_k_b_type(GgmlType::F32), GgmlType::F32);
  EXPECT_EQ(mla_legacy_k_b_type(GgmlType::BF16), GgmlType::BF16);
  EXPECT_EQ(mla_legacy_k_b_type(GgmlType::F16), GgmlType::F16);
  EXPECT_EQ(mla_legacy_k_b_type(GgmlType::Q4_K), GgmlType::F16);
  EXPECT_EQ(mla_legacy_k_b_type(GgmlType::Q8_0), GgmlType::F16);
  // Every dequantized Q6_K / Q4_K value of a real-sized row survives the F16 re-encoding to
  // within F16's half-ulp (2^-11 relative), far below the quantization step.
  std::mt19937 rng(3);
  for (GgmlType src : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0}) {
    const Legacy l = derive(rng, {512, 2, 128, 128}, src, GgmlType::F16, nullptr);
    const size_t k_row = ggml_row_size(GgmlType::F16, 128);
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t r = 0; r < 512; ++r)
        for (int64_t j = 0; j < 128; ++j) {
          uint16_t bits;
          std::memcpy(&bits, l.k_b.data() + static_cast<size_t>(h * 512 + r) * k_row + j * 2, 2);
          const float want = l.kv_b.f[static_cast<size_t>((h * 256 + j) * 512 + r)];
          ASSERT_LE(std::abs(fp16_to_fp32(bits) - want), std::abs(want) * (1.0f / 2048) + 1e-7f);
        }
  }
}

TEST(MlaLegacy, RejectsShapesTheTypesCannotHold) {
  std::vector<uint8_t> buf(1 << 20);
  // k-quant rows are 256 long: a 128-wide nope part cannot be a Q4_K row.
  EXPECT_THROW(mla_legacy_check({512, 2, 128, 128}, GgmlType::Q4_K, GgmlType::Q4_K), Error);
  // A 64-wide latent cannot be a Q4_K source row.
  EXPECT_THROW(mla_legacy_check({64, 2, 32, 32}, GgmlType::Q4_K, GgmlType::F16), Error);
  EXPECT_THROW(mla_legacy_check({64, 0, 32, 32}, GgmlType::F32, GgmlType::F16), Error);
  EXPECT_THROW(mla_legacy_derive({64, 2, 0, 32}, GgmlType::F32, buf.data(), GgmlType::F16, buf.data(), buf.data()),
               Error);
  EXPECT_NO_THROW(mla_legacy_check({512, 2, 128, 128}, GgmlType::Q4_K, GgmlType::F16));
}

// The reference mode's latent (SWAPMOE_MLA_LEGACY_REFERENCE): rounded through attn_kv_b's
// vec_dot_type, a plain float dot product of a dequantized attn_kv_b row with it must give
// what the quantized product (weights x the latent converted to that type) gives, which is
// what llama.cpp's non-MLA path computes.
TEST(MlaLegacy, RoundedLatentIsWhatTheQuantizedProductSees) {
  EXPECT_EQ(mla_legacy_latent_type(GgmlType::F32), GgmlType::F32);
  EXPECT_EQ(mla_legacy_latent_type(GgmlType::Q8_0), GgmlType::Q8_0);
  EXPECT_EQ(mla_legacy_latent_type(GgmlType::Q4_K), GgmlType::Q8_K);
  EXPECT_EQ(mla_legacy_latent_type(GgmlType::Q6_K), GgmlType::Q8_K);
  std::mt19937 rng(77);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t R = 512;
  for (GgmlType src : {GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q5_0, GgmlType::F16}) {
    Mat w = rand_mat(rng, R, 4, src);
    const GgmlType at = mla_legacy_latent_type(src);
    std::vector<float> x(R);
    for (float& v : x) v = nd(rng);
    std::vector<uint8_t> xq(ggml_row_size(at, R));
    quant_traits(at).from_float(x.data(), xq.data(), R);
    std::vector<float> y = x;
    mla_legacy_round_latent(at, y.data(), R);
    double moved = 0;
    for (int64_t i = 0; i < R; ++i) moved = std::max(moved, static_cast<double>(std::abs(y[i] - x[i])));
    EXPECT_GT(moved, 0.0) << ggml_type_name(src);  // it did round
    for (int64_t r = 0; r < 4; ++r) {
      const float want = quant_traits(src).vec_dot_ref(R, w.bytes.data() + r * ggml_row_size(src, R), xq.data());
      double got = 0, mag = 0;
      for (int64_t i = 0; i < R; ++i) {
        got += static_cast<double>(w.f[static_cast<size_t>(r * R + i)]) * y[static_cast<size_t>(i)];
        mag += std::abs(static_cast<double>(w.f[static_cast<size_t>(r * R + i)]) * y[static_cast<size_t>(i)]);
      }
      EXPECT_NEAR(got, want, 2e-6 * mag + 1e-6) << ggml_type_name(src) << " row " << r;
    }
  }
  std::vector<float> odd(100, 1.0f);
  EXPECT_THROW(mla_legacy_round_latent(GgmlType::Q8_0, odd.data(), 100), Error);
}

// Absorbed MLA on the derived tensors against naive attention that decompresses keys and
// values from attn_kv_b itself, in double precision.
double legacy_compare(uint32_t seed, int64_t q_rank, bool yarn, GgmlType src, int64_t R, MlaCache::Precision prec) {
  Model m = make_model(seed, q_rank, yarn, GgmlType::F32, R);
  std::mt19937 rng(seed + 100);
  const MlaLegacyShape s{R, m.cfg.n_head, m.cfg.head_dim_k_mla - m.cfg.n_rot, m.cfg.head_dim_v_mla};
  ThreadPool pool(2);
  static std::vector<Legacy> keep;  // the weights must outlive the comparison
  keep.push_back(derive(rng, s, src, mla_legacy_k_b_type(src), &pool));
  const Legacy& l = keep.back();
  m.w.k_b = MatrixRef{l.k_type, s.nope, R * s.n_head, l.k_b.data()};
  m.w.v_b = MatrixRef{src, R, s.head_dim_v * s.n_head, l.v_b.data()};
  return run_compare(m, prec, 8, 2, seed + 7, nullptr, &l.kv_b);
}

TEST(MlaLegacy, AbsorbedOnDerivedMatchesNaiveF32) {
  // F32 source: k_b stays F32, so only float summation order separates the two.
  EXPECT_LT(legacy_compare(21, 48, true, GgmlType::F32, 64, MlaCache::Precision::F32), 1e-5);
  EXPECT_LT(legacy_compare(22, 0, false, GgmlType::F32, 64, MlaCache::Precision::F32), 1e-5);
}

TEST(MlaLegacy, AbsorbedOnDerivedMatchesNaiveQuantized) {
  // Quantized sources: the reference uses the dequantized kv_b; what remains is the F16
  // query for k_b (2^-11), the source's activation quantization for v_b (Q8_0 / Q8_K) and,
  // in F16 cache mode, llama.cpp's roundings.
  for (GgmlType src : {GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::IQ4_XS}) {
    SCOPED_TRACE(ggml_type_name(src));
    const int64_t R = src == GgmlType::Q8_0 ? 64 : 256;
    const double f32 = legacy_compare(23, 48, true, src, R, MlaCache::Precision::F32);
    EXPECT_LT(f32, 2e-2);
    EXPECT_LT(legacy_compare(24, 0, false, src, R, MlaCache::Precision::F16), 2e-2);
  }
}

}  // namespace
}  // namespace swapmoe
