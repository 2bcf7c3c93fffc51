#pragma once
// Routing profiles for SwapMoE's per-layer slot allocation (docs/swapmoe.md).
//
// `swapmoe profile MODEL --text FILE -o PROFILE` runs the exact model over a text and
// records, per MoE layer and expert, from the unmasked router output of every token:
//   counts[e]  how often e was among the chosen n_used experts
//   mass[e]    the summed router probability of e (softmax probability; for sigmoid
//              gating the sigmoid score normalised over the layer, as in importance)
//   chosen_mass[e]  the same, summed only over the tokens whose selection chose e (the
//              quantity importance accumulates; slot shares and initial sets use it)
//   entropy    of the layer's mean routing distribution mass / tokens (nats), and the
//              mean per-token entropy (a layer whose tokens are each sharp but disagree
//              has a low mean per-token entropy and a high mean-distribution entropy)
//   cover90    experts_to_cover(chosen_mass, 0.9): how many experts hold 90% of it.
// JSON layout:
//   {"format":"swapmoe-profile","version":1,"arch":"qwen3moe","n_expert":32,"n_expert_used":2,
//    "tokens":T,"layers":[{"layer":0,"tokens":T,"counts":[...],"mass":[...],"chosen_mass":[...],"entropy":h,
//    "token_entropy":h_t,"cover90":c}, ...]}

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "arch/config.h"
#include "expert/expert_store.h"

namespace swapmoe {

struct LayerProfile {
  int layer = 0;
  uint64_t tokens = 0;
  std::vector<uint64_t> counts;  // [n_expert]
  std::vector<double> mass;      // [n_expert]
  std::vector<double> chosen_mass;  // [n_expert] probability of e summed over the tokens that chose e
  double token_entropy_sum = 0;  // sum over tokens of the per-token routing entropy
  double entropy() const;        // of mass / sum(mass), nats
  double token_entropy() const { return tokens ? token_entropy_sum / static_cast<double>(tokens) : 0.0; }
};

struct RoutingProfile {
  std::string arch;
  int64_t n_expert = 0;
  int64_t n_expert_used = 0;
  uint64_t tokens = 0;              // tokens evaluated (routes of the first MoE layer)
  std::vector<LayerProfile> layers;  // MoE layers only, in layer order

  // Adds one token's routing of `layer`: unmasked probabilities [n_expert] (already
  // normalised for sigmoid gating) and the chosen ids [n_used].
  void add(int layer, const float* probs, const int32_t* ids);
  const LayerProfile* find(int layer) const;

  nlohmann::json to_json() const;
  // Throws Error naming `what` (the file) on a malformed profile.
  static RoutingProfile from_json(const nlohmann::json& j, const std::string& what);
  void save(const std::string& path) const;
  static RoutingProfile load(const std::string& path);
  // Throws Error when the profile was recorded on a model of another shape.
  void check_matches(const ModelConfig& cfg, const std::string& what) const;
};

// An ExpertStore decorator that records a RoutingProfile while the inner store does the
// work. Routing is the unmodified model's (select_experts, nothing masked).
class RoutingRecorder : public ExpertStore {
 public:
  RoutingRecorder(std::unique_ptr<ExpertStore> inner, const ModelConfig& cfg);
  void route(int layer, const RouterParams& p, const float* logits, int32_t* ids, float* weights) override;
  void request(int layer, std::span<const int32_t> experts) override { inner_->request(layer, experts); }
  void prefetch(int layer, std::span<const int32_t> experts) override { inner_->prefetch(layer, experts); }
  bool batch_routing() const override { return inner_->batch_routing(); }
  int64_t capacity() const override { return inner_->capacity(); }
  ExpertView acquire(int layer, int32_t expert) override { return inner_->acquire(layer, expert); }
  size_t acquire_ready(int layer, std::span<const int32_t> pending, std::vector<AcquiredExpert>& out) override {
    return inner_->acquire_ready(layer, pending, out);
  }
  void release(int layer, int32_t expert) override { inner_->release(layer, expert); }
  void cancel(int layer) override { inner_->cancel(layer); }
  ExpertStoreStats stats_report() const override { return inner_->stats_report(); }
  void reset_stats() override { inner_->reset_stats(); }
  const RoutingProfile& profile() const { return profile_; }

 private:
  std::unique_ptr<ExpertStore> inner_;
  RoutingProfile profile_;
  int first_moe_ = -1;
  std::vector<float> probs_;
};

}  // namespace swapmoe
