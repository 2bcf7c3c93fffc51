#include "cache/swapmoe_profile.h"

#include <cmath>
#include <fstream>

#include "cache/swapmoe_policy.h"
#include "util/error.h"
#include "util/text_file.h"

namespace swapmoe {

namespace {

double entropy_of(const float* p, int64_t n) {
  double sum = 0.0, h = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(p[i]);
  if (sum <= 0.0) return 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double q = static_cast<double>(p[i]) / sum;
    if (q > 0.0) h -= q * std::log(q);
  }
  return h;
}

}  // namespace

double LayerProfile::entropy() const {
  double sum = 0.0, h = 0.0;
  for (double m : mass) sum += m;
  if (sum <= 0.0) return 0.0;
  for (double m : mass) {
    const double q = m / sum;
    if (q > 0.0) h -= q * std::log(q);
  }
  return h;
}

void RoutingProfile::add(int layer, const float* probs, const int32_t* ids) {
  LayerProfile* L = nullptr;
  for (LayerProfile& x : layers)
    if (x.layer == layer) L = &x;
  if (!L) {
    layers.push_back(LayerProfile{});
    L = &layers.back();
    L->layer = layer;
    L->counts.assign(static_cast<size_t>(n_expert), 0);
    L->mass.assign(static_cast<size_t>(n_expert), 0.0);
    L->chosen_mass.assign(static_cast<size_t>(n_expert), 0.0);
  }
  ++L->tokens;
  for (int64_t e = 0; e < n_expert; ++e) L->mass[e] += static_cast<double>(probs[e]);
  for (int64_t j = 0; j < n_expert_used; ++j) {
    ++L->counts[ids[j]];
    L->chosen_mass[ids[j]] += static_cast<double>(probs[ids[j]]);
  }
  L->token_entropy_sum += entropy_of(probs, n_expert);
}

const LayerProfile* RoutingProfile::find(int layer) const {
  for (const LayerProfile& x : layers)
    if (x.layer == layer) return &x;
  return nullptr;
}

nlohmann::json RoutingProfile::to_json() const {
  nlohmann::json j;
  j["format"] = "swapmoe-profile";
  j["version"] = 1;
  j["arch"] = arch;
  j["n_expert"] = n_expert;
  j["n_expert_used"] = n_expert_used;
  j["tokens"] = tokens;
  nlohmann::json ls = nlohmann::json::array();
  for (const LayerProfile& L : layers) {
    nlohmann::json l;
    l["layer"] = L.layer;
    l["tokens"] = L.tokens;
    l["counts"] = L.counts;
    l["mass"] = L.mass;
    l["chosen_mass"] = L.chosen_mass;
    l["entropy"] = L.entropy();
    l["token_entropy"] = L.token_entropy();
    l["cover90"] = experts_to_cover(L.chosen_mass, kCoverShare);
    ls.push_back(std::move(l));
  }
  j["layers"] = std::move(ls);
  return j;
}

RoutingProfile RoutingProfile::from_json(const nlohmann::json& j, const std::string& what) {
  RoutingProfile p;
  try {
    if (!j.is_object() || j.value("format", "") != "swapmoe-profile")
      fail(what, ": not a swapmoe routing profile (written by `swapmoe profile`)");
    if (j.at("version").get<int>() != 1) fail(what, ": profile version ", j.at("version").dump(), ", expected 1");
    p.arch = j.value("arch", "");
    p.n_expert = j.at("n_expert").get<int64_t>();
    p.n_expert_used = j.at("n_expert_used").get<int64_t>();
    p.tokens = j.at("tokens").get<uint64_t>();
    if (p.n_expert <= 0 || p.n_expert > (1 << 20) || p.n_expert_used <= 0 || p.n_expert_used > p.n_expert)
      fail(what, ": invalid expert counts ", p.n_expert, " / ", p.n_expert_used);
    for (const nlohmann::json& l : j.at("layers")) {
      LayerProfile L;
      L.layer = l.at("layer").get<int>();
      L.tokens = l.at("tokens").get<uint64_t>();
      L.counts = l.at("counts").get<std::vector<uint64_t>>();
      L.mass = l.at("mass").get<std::vector<double>>();
      L.chosen_mass = l.at("chosen_mass").get<std::vector<double>>();
      L.token_entropy_sum = l.value("token_entropy", 0.0) * static_cast<double>(L.tokens);
      if (static_cast<int64_t>(L.counts.size()) != p.n_expert || static_cast<int64_t>(L.mass.size()) != p.n_expert ||
          static_cast<int64_t>(L.chosen_mass.size()) != p.n_expert)
        fail(what, ": layer ", L.layer, " has ", L.counts.size(), " counts, ", L.mass.size(), " masses and ",
             L.chosen_mass.size(), " chosen masses, expected ", p.n_expert);
      for (const std::vector<double>* v : {&L.mass, &L.chosen_mass})
        for (double m : *v)
          if (!(m >= 0.0) || !std::isfinite(m)) fail(what, ": layer ", L.layer, " has a negative or non-finite mass");
      if (p.find(L.layer)) fail(what, ": layer ", L.layer, " appears twice");
      p.layers.push_back(std::move(L));
    }
  } catch (const nlohmann::json::exception& e) {
    fail(what, ": malformed profile: ", e.what());
  }
  return p;
}

void RoutingProfile::save(const std::string& path) const {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) fail(path, ": cannot open for writing");
  out << to_json().dump(1) << "\n";
  out.flush();
  if (!out) fail(path, ": write error");
}

RoutingProfile RoutingProfile::load(const std::string& path) {
  // read_whole_file refuses FIFOs and devices without blocking, and caps the size.
  const std::string text = read_whole_file(path, "the routing profile");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text, nullptr, true, false);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": not valid JSON: ", e.what());
  }
  return from_json(j, path);
}

void RoutingProfile::check_matches(const ModelConfig& cfg, const std::string& what) const {
  if (n_expert != cfg.n_expert || n_expert_used != cfg.n_expert_used)
    fail(what, ": profile recorded with ", n_expert, " experts (", n_expert_used, " used), the model has ",
         cfg.n_expert, " (", cfg.n_expert_used, " used)");
  for (const LayerProfile& L : layers)
    if (L.layer < 0 || L.layer >= cfg.n_layer || !cfg.is_moe_layer(L.layer))
      fail(what, ": profile has layer ", L.layer, ", which is not a MoE layer of this model");
}

RoutingRecorder::RoutingRecorder(std::unique_ptr<ExpertStore> inner, const ModelConfig& cfg) : inner_(std::move(inner)) {
  profile_.arch = cfg.arch_name;
  profile_.n_expert = cfg.n_expert;
  profile_.n_expert_used = cfg.n_expert_used;
  for (int l = 0; l < static_cast<int>(cfg.n_layer); ++l)
    if (cfg.is_moe_layer(l)) {
      first_moe_ = l;
      break;
    }
  probs_.resize(static_cast<size_t>(cfg.n_expert));
}

void RoutingRecorder::route(int layer, const RouterParams& p, const float* logits, int32_t* ids, float* weights) {
  select_experts(p, logits, ids, weights, nullptr, probs_.data());
  if (p.gating == GatingFunc::Sigmoid) {
    double sum = 0.0;
    for (float v : probs_) sum += static_cast<double>(v);
    if (sum > 0.0)
      for (float& v : probs_) v = static_cast<float>(static_cast<double>(v) / sum);
  }
  if (layer == first_moe_) ++profile_.tokens;
  profile_.add(layer, probs_.data(), ids);
}

}  // namespace swapmoe
