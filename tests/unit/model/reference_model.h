#pragma once
// An independent, deliberately naive implementation of the MoE graphs (qwen3moe,
// qwen2moe, llama/Mixtral, olmoe, deepseek2 with absorbed MLA, glm4moe; no YaRN), written from the model descriptions
// rather than from the engine: every weight is dequantized to float with the scalar
// reference kernels, arithmetic is done in double with plain loops. The only engine
// behaviours it copies on purpose are llama.cpp's F16 roundings in attention (the F16 KV
// cache, and the F16 conversion of the query and of the softmax probabilities), so the
// comparison can be tight.

#include <memory>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "arch/config.h"

namespace swapmoe::test {

class ReferenceModel {
 public:
  explicit ReferenceModel(const std::string& path);
  // Logits after feeding `token` at the next position.
  std::vector<double> step(int32_t token);
  const ModelConfig& config() const { return cfg_; }

 private:
  std::vector<float> vec(const std::string& name) const;  // any tensor, dequantized
  // y = W x with W [rows][cols] dequantized.
  std::vector<double> mul(const std::string& name, const std::vector<double>& x, int64_t expert = -1) const;
  std::vector<double> rmsnorm(const std::vector<double>& x, const std::vector<float>& w) const;
  // Rotates the first n_rot values of each of n_heads blocks of `stride` values starting at offset.
  void rope(std::vector<double>& x, int64_t n_heads, int64_t pos, int64_t stride = -1, int64_t offset = 0) const;
  std::vector<double> mla_attention(int il, const std::vector<double>& h);
  std::vector<double> expert_ffn(int il, int64_t e, const std::vector<double>& x) const;
  std::vector<double> ffn_routing_keys(int il, const std::vector<double>& h) const;

  std::unique_ptr<GgufFile> f_;
  ModelConfig cfg_;
  int64_t pos_ = 0;
  std::vector<std::vector<std::vector<double>>> k_, v_;  // [layer][pos][dim], F16-rounded (MLA: k_ = [c | k_pe])
};

}  // namespace swapmoe::test
