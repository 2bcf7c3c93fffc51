// The trait table: for each type, its vec_dot_type and the kernels for each ISA. SIMD
// entries are only ever taken after cpu_supports() says the CPU has the ISA.

#include <array>

#include "quant/kernels.h"
#include "quant/quant.h"
#include "util/error.h"

namespace swapmoe {
namespace {

using namespace quant;

// Per-ISA overrides of the scalar entries; nullptr means "use the next lower ISA".
struct IsaKernels {
  ToFloatFn to_float = nullptr;
  FromFloatFn from_float = nullptr;
  VecDotFn vec_dot = nullptr;
  VecDotMultiFn vec_dot_multi = nullptr;  // must match vec_dot bitwise; set together with it
};

struct Entry {
  GgmlType type;
  GgmlType vec_dot_type;
  ToFloatFn to_float_ref;
  FromFloatFn from_float_ref;
  VecDotFn vec_dot_ref;
  FromFloatFn from_float_scalar;  // the activation fast path in scalar form (usually == ref)
  IsaKernels avx2;
  IsaKernels avx512;
};

#define REF(t) to_float_##t##_ref, from_float_##t##_ref, vec_dot_##t##_ref

const std::array<Entry, 27> kEntries{{
    {GgmlType::F32, GgmlType::F32, REF(f32), from_float_f32_ref,
     {nullptr, nullptr, vec_dot_f32_avx2, vec_dot_multi_f32_avx2},
     {nullptr, nullptr, vec_dot_f32_avx512, vec_dot_multi_f32_avx512}},
    {GgmlType::F16, GgmlType::F16, REF(f16), from_float_f16_ref,
     {to_float_f16_avx2, from_float_f16_avx2, vec_dot_f16_avx2, vec_dot_multi_f16_avx2},
     {to_float_f16_avx512, from_float_f16_avx512, vec_dot_f16_avx512, vec_dot_multi_f16_avx512}},
    {GgmlType::BF16, GgmlType::BF16, REF(bf16), from_float_bf16_ref,
     {nullptr, nullptr, vec_dot_bf16_avx2, vec_dot_multi_bf16_avx2},
     {nullptr, nullptr, vec_dot_bf16_avx512, vec_dot_multi_bf16_avx512}},
    {GgmlType::Q4_0, GgmlType::Q8_0, REF(q4_0), from_float_q4_0_ref,
     {nullptr, nullptr, vec_dot_q4_0_avx2, vec_dot_multi_q4_0_avx2},
     {nullptr, nullptr, vec_dot_q4_0_avx512, vec_dot_multi_q4_0_avx512}},
    {GgmlType::Q4_1, GgmlType::Q8_1, REF(q4_1), from_float_q4_1_ref,
     {nullptr, nullptr, vec_dot_q4_1_avx2, vec_dot_multi_q4_1_avx2},
     {nullptr, nullptr, vec_dot_q4_1_avx512, vec_dot_multi_q4_1_avx512}},
    {GgmlType::Q5_0, GgmlType::Q8_0, REF(q5_0), from_float_q5_0_ref,
     {nullptr, nullptr, vec_dot_q5_0_avx2, vec_dot_multi_q5_0_avx2},
     {nullptr, nullptr, vec_dot_q5_0_avx512, vec_dot_multi_q5_0_avx512}},
    {GgmlType::Q5_1, GgmlType::Q8_1, REF(q5_1), from_float_q5_1_ref,
     {nullptr, nullptr, vec_dot_q5_1_avx2, vec_dot_multi_q5_1_avx2},
     {nullptr, nullptr, vec_dot_q5_1_avx512, vec_dot_multi_q5_1_avx512}},
    {GgmlType::Q8_0, GgmlType::Q8_0, REF(q8_0), from_float_q8_0_act,
     {to_float_q8_0_avx2, from_float_q8_0_avx2, vec_dot_q8_0_avx2, vec_dot_multi_q8_0_avx2},
     {to_float_q8_0_avx512, from_float_q8_0_avx512, vec_dot_q8_0_avx512w, vec_dot_multi_q8_0_avx512w}},
    {GgmlType::Q8_1, GgmlType::Q8_1, REF(q8_1), from_float_q8_1_act,
     {nullptr, from_float_q8_1_avx2, nullptr}, {nullptr, from_float_q8_1_avx512, nullptr}},
    {GgmlType::Q2_K, GgmlType::Q8_K, REF(q2_k), from_float_q2_k_ref,
     {nullptr, nullptr, vec_dot_q2_k_avx2, vec_dot_multi_q2_k_avx2},
     {nullptr, nullptr, vec_dot_q2_k_avx512, vec_dot_multi_q2_k_avx512}},
    {GgmlType::Q3_K, GgmlType::Q8_K, REF(q3_k), from_float_q3_k_ref,
     {nullptr, nullptr, vec_dot_q3_k_avx2, vec_dot_multi_q3_k_avx2},
     {nullptr, nullptr, vec_dot_q3_k_avx512, vec_dot_multi_q3_k_avx512}},
    {GgmlType::Q4_K, GgmlType::Q8_K, REF(q4_k), from_float_q4_k_ref,
     {to_float_q4_k_avx2, nullptr, vec_dot_q4_k_avx2, vec_dot_multi_q4_k_avx2},
     {to_float_q4_k_avx512, nullptr, vec_dot_q4_k_avx512, vec_dot_multi_q4_k_avx512}},
    {GgmlType::Q5_K, GgmlType::Q8_K, REF(q5_k), from_float_q5_k_ref,
     {nullptr, nullptr, vec_dot_q5_k_avx2, vec_dot_multi_q5_k_avx2},
     {nullptr, nullptr, vec_dot_q5_k_avx512, vec_dot_multi_q5_k_avx512}},
    {GgmlType::Q6_K, GgmlType::Q8_K, REF(q6_k), from_float_q6_k_ref,
     {to_float_q6_k_avx2, nullptr, vec_dot_q6_k_avx2, vec_dot_multi_q6_k_avx2},
     {to_float_q6_k_avx512, nullptr, vec_dot_q6_k_avx512w, vec_dot_multi_q6_k_avx512w}},
    {GgmlType::Q8_K, GgmlType::Q8_K, REF(q8_k), from_float_q8_k_ref,
     {nullptr, from_float_q8_k_avx2, nullptr}, {nullptr, from_float_q8_k_avx512, nullptr}},
    // Grid-based i-quants: dot products against Q8_K, as llama.cpp pairs them.
    {GgmlType::IQ2_XXS, GgmlType::Q8_K, REF(iq2_xxs), from_float_iq2_xxs_ref,
     {nullptr, nullptr, vec_dot_iq2_xxs_avx2, vec_dot_multi_iq2_xxs_avx2},
     {nullptr, nullptr, vec_dot_iq2_xxs_avx512, vec_dot_multi_iq2_xxs_avx512}},
    {GgmlType::IQ2_XS, GgmlType::Q8_K, REF(iq2_xs), from_float_iq2_xs_ref,
     {nullptr, nullptr, vec_dot_iq2_xs_avx2, vec_dot_multi_iq2_xs_avx2},
     {nullptr, nullptr, vec_dot_iq2_xs_avx512, vec_dot_multi_iq2_xs_avx512}},
    {GgmlType::IQ2_S, GgmlType::Q8_K, REF(iq2_s), from_float_iq2_s_ref,
     {nullptr, nullptr, vec_dot_iq2_s_avx2, vec_dot_multi_iq2_s_avx2},
     {nullptr, nullptr, vec_dot_iq2_s_avx512, vec_dot_multi_iq2_s_avx512}},
    {GgmlType::IQ3_XXS, GgmlType::Q8_K, REF(iq3_xxs), from_float_iq3_xxs_ref,
     {nullptr, nullptr, vec_dot_iq3_xxs_avx2, vec_dot_multi_iq3_xxs_avx2},
     {nullptr, nullptr, vec_dot_iq3_xxs_avx512, vec_dot_multi_iq3_xxs_avx512}},
    {GgmlType::IQ3_S, GgmlType::Q8_K, REF(iq3_s), from_float_iq3_s_ref,
     {nullptr, nullptr, vec_dot_iq3_s_avx2, vec_dot_multi_iq3_s_avx2},
     {nullptr, nullptr, vec_dot_iq3_s_avx512, vec_dot_multi_iq3_s_avx512}},
    {GgmlType::IQ1_S, GgmlType::Q8_K, REF(iq1_s), from_float_iq1_s_ref,
     {nullptr, nullptr, vec_dot_iq1_s_avx2, vec_dot_multi_iq1_s_avx2},
     {nullptr, nullptr, vec_dot_iq1_s_avx512, vec_dot_multi_iq1_s_avx512}},
    {GgmlType::IQ1_M, GgmlType::Q8_K, REF(iq1_m), from_float_iq1_m_ref,
     {nullptr, nullptr, vec_dot_iq1_m_avx2, vec_dot_multi_iq1_m_avx2},
     {nullptr, nullptr, vec_dot_iq1_m_avx512, vec_dot_multi_iq1_m_avx512}},
    // Activation types as llama.cpp's CPU backend pairs them (type_traits_cpu's vec_dot_type).
    {GgmlType::IQ4_NL, GgmlType::Q8_0, REF(iq4_nl), from_float_iq4_nl_ref,
     {nullptr, nullptr, vec_dot_iq4_nl_avx2, vec_dot_multi_iq4_nl_avx2},
     {nullptr, nullptr, vec_dot_iq4_nl_avx512, vec_dot_multi_iq4_nl_avx512}},
    {GgmlType::IQ4_XS, GgmlType::Q8_K, REF(iq4_xs), from_float_iq4_xs_ref,
     {nullptr, nullptr, vec_dot_iq4_xs_avx2, vec_dot_multi_iq4_xs_avx2},
     {nullptr, nullptr, vec_dot_iq4_xs_avx512, vec_dot_multi_iq4_xs_avx512}},
    {GgmlType::MXFP4, GgmlType::Q8_0, REF(mxfp4), from_float_mxfp4_ref,
     {nullptr, nullptr, vec_dot_mxfp4_avx2, vec_dot_multi_mxfp4_avx2},
     {nullptr, nullptr, vec_dot_mxfp4_avx512, vec_dot_multi_mxfp4_avx512}},
    {GgmlType::TQ1_0, GgmlType::Q8_K, REF(tq1_0), from_float_tq1_0_ref,
     {nullptr, nullptr, vec_dot_tq1_0_avx2, vec_dot_multi_tq1_0_avx2},
     {nullptr, nullptr, vec_dot_tq1_0_avx512, vec_dot_multi_tq1_0_avx512}},
    {GgmlType::TQ2_0, GgmlType::Q8_K, REF(tq2_0), from_float_tq2_0_ref,
     {nullptr, nullptr, vec_dot_tq2_0_avx2, vec_dot_multi_tq2_0_avx2},
     {nullptr, nullptr, vec_dot_tq2_0_avx512, vec_dot_multi_tq2_0_avx512}},
}};

#undef REF

const Entry& find_entry(GgmlType t) {
  for (const Entry& e : kEntries)
    if (e.type == t) return e;
  fail("no arithmetic support for ggml type ", ggml_type_info(static_cast<uint32_t>(t)) ? ggml_type_name(t) : "?",
       " (id ", static_cast<uint32_t>(t), ")");
}

void apply(QuantTraits& q, const IsaKernels& k) {
  if (k.to_float) q.to_float = k.to_float;
  if (k.from_float) q.from_float = k.from_float;
  // A multi kernel is only valid next to the vec_dot it mirrors: an ISA that overrides
  // vec_dot without providing a multi kernel drops the lower ISA's one.
  if (k.vec_dot) {
    q.vec_dot = k.vec_dot;
    q.vec_dot_multi = k.vec_dot_multi;
  }
}

MatTileFn avx512_tile(GgmlType t) {
  switch (t) {
    case GgmlType::Q4_K: return mat_tile_q4_k_avx512;
    case GgmlType::IQ2_XXS: return mat_tile_iq2_xxs_avx512;
    case GgmlType::IQ2_XS: return mat_tile_iq2_xs_avx512;
    case GgmlType::IQ2_S: return mat_tile_iq2_s_avx512;
    case GgmlType::IQ3_XXS: return mat_tile_iq3_xxs_avx512;
    case GgmlType::IQ3_S: return mat_tile_iq3_s_avx512;
    case GgmlType::IQ1_S: return mat_tile_iq1_s_avx512;
    case GgmlType::IQ1_M: return mat_tile_iq1_m_avx512;
    case GgmlType::IQ4_XS: return mat_tile_iq4_xs_avx512;
    case GgmlType::IQ4_NL: return mat_tile_iq4_nl_avx512;
    case GgmlType::MXFP4: return mat_tile_mxfp4_avx512;
    default: return nullptr;
  }
}

QuantTraits build(GgmlType t, Isa isa) {
  const Entry& e = find_entry(t);
  QuantTraits q{};
  q.type = e.type;
  q.vec_dot_type = e.vec_dot_type;
  q.to_float = q.to_float_ref = e.to_float_ref;
  q.from_float_ref = e.from_float_ref;
  q.from_float = e.from_float_scalar;
  q.vec_dot = q.vec_dot_ref = e.vec_dot_ref;
  q.vec_dot_multi = nullptr;
  if (static_cast<int>(isa) >= static_cast<int>(Isa::Avx2)) apply(q, e.avx2);
  if (static_cast<int>(isa) >= static_cast<int>(Isa::Avx512)) apply(q, e.avx512);
  // Row tiles mirror the AVX-512 vec_dot bitwise, so they come only with that ISA.
  q.mat_tile = nullptr;
  if (static_cast<int>(isa) >= static_cast<int>(Isa::Avx512)) q.mat_tile = avx512_tile(t);
  return q;
}

constexpr std::array<GgmlType, 27> kSupported{
    GgmlType::F32,     GgmlType::F16,    GgmlType::BF16,  GgmlType::Q4_0,    GgmlType::Q4_1,  GgmlType::Q5_0,
    GgmlType::Q5_1,    GgmlType::Q8_0,   GgmlType::Q8_1,  GgmlType::Q2_K,    GgmlType::Q3_K,  GgmlType::Q4_K,
    GgmlType::Q5_K,    GgmlType::Q6_K,   GgmlType::Q8_K,  GgmlType::IQ2_XXS, GgmlType::IQ2_XS, GgmlType::IQ2_S,
    GgmlType::IQ3_XXS, GgmlType::IQ3_S,  GgmlType::IQ1_S, GgmlType::IQ1_M,   GgmlType::IQ4_NL, GgmlType::IQ4_XS,
    GgmlType::MXFP4,   GgmlType::TQ1_0,  GgmlType::TQ2_0};

}  // namespace

const QuantTraits& quant_traits(GgmlType t) {
  // Built once for the best ISA; a plain array indexed by position in kSupported.
  static const std::array<QuantTraits, kSupported.size()> table = [] {
    std::array<QuantTraits, kSupported.size()> out{};
    for (size_t i = 0; i < kSupported.size(); ++i) out[i] = build(kSupported[i], best_isa());
    return out;
  }();
  for (size_t i = 0; i < kSupported.size(); ++i)
    if (kSupported[i] == t) return table[i];
  find_entry(t);  // throws with the type's name
  fail("no arithmetic support for ggml type id ", static_cast<uint32_t>(t));
}

QuantTraits quant_traits_for(GgmlType t, Isa isa) {
  if (!cpu_supports(isa)) fail("quant_traits_for: this CPU does not support ", isa_name(isa));
  return build(t, isa);
}

}  // namespace swapmoe
