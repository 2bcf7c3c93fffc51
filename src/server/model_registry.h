#pragma once
// The models a server answers for, and which of them is loaded.
//
// Single mode (`swapmoe serve MODEL`): one model, loaded before the server starts; every
// request uses it, whatever model it names (as before).
//
// Store mode (`swapmoe serve` without MODEL): the models of ollama's store and the Hugging
// Face cache (src/store). A request names its model; the registry loads it on demand. One
// model is loaded at a time, inside the one --mem budget: a request for another model
// waits until the requests using the loaded one have finished (their leases are gone),
// unloads it, and loads its own. Requests arriving during a switch wait for it, so a
// switch is never starved. The simplest correct policy; keeping several models loaded
// when the budget holds them all is left for later.
//
// Threads: every method may be called from any thread.

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/chat_prompt.h"
#include "server/engine.h"
#include "store/store.h"

namespace swapmoe::server {

// A loaded model: its engine (which owns the Model), its prompter, and its store's defaults.
struct ServedModel {
  std::string name;
  std::string path;
  store::ModelParams params;
  // Owned in store mode; borrowed in single mode. The prompter refers to the engine's
  // model, so it is declared (and destroyed) after it.
  std::unique_ptr<Engine> owned_engine;
  std::unique_ptr<ChatPrompter> owned_prompter;
  Engine* engine = nullptr;
  const ChatPrompter* prompter = nullptr;
};

class ModelRegistry;

// A request's hold on a loaded model: the model stays loaded while a lease exists. Keep it
// until the generation is over (GenRequest::hold does this for jobs).
class ModelLease {
 public:
  // name and params: as the request's model name resolved (several names may share one
  // blob, and so one loaded model, each with its own defaults).
  ModelLease(ModelRegistry* r, std::shared_ptr<ServedModel> m, std::string name, store::ModelParams params)
      : registry_(r), model_(std::move(m)), name_(std::move(name)), params_(std::move(params)) {}
  ~ModelLease();
  ModelLease(const ModelLease&) = delete;
  ModelLease& operator=(const ModelLease&) = delete;

  Engine& engine() const { return *model_->engine; }
  const ChatPrompter& prompter() const { return *model_->prompter; }
  const std::string& name() const { return name_; }
  const store::ModelParams& params() const { return params_; }

 private:
  ModelRegistry* registry_;
  std::shared_ptr<ServedModel> model_;
  std::string name_;
  store::ModelParams params_;
};
using Lease = std::shared_ptr<ModelLease>;

class ModelRegistry {
 public:
  using Catalog = std::function<std::vector<store::StoreModel>()>;
  using Resolver = std::function<store::StoreModel(const std::string& name)>;
  using Loader = std::function<std::unique_ptr<ServedModel>(const store::StoreModel&)>;

  // Single mode: the caller's engine and prompter, used for every request.
  ModelRegistry(Engine& engine, const ChatPrompter& prompter, std::string name, store::ModelParams params = {});
  // Store mode. catalog lists the models (for /api/tags, /v1/models); resolver finds one by
  // name and throws swapmoe::Error when it is not there; loader loads one.
  ModelRegistry(Catalog catalog, Resolver resolver, Loader loader);
  ~ModelRegistry();

  bool store_mode() const { return store_mode_; }

  // The model a request names (nullopt or "": the request named none). Single mode: the
  // one model. Store mode: HttpError 400 without a name, 404 when no store has it, 503
  // while shutting down, 500 when it fails to load.
  Lease acquire(const std::optional<std::string>& name);
  // The loaded model, if any, without loading or waiting for a switch.
  Lease loaded();
  // The models to list: the stores' (store mode) or the one model (single mode, path and
  // name only).
  std::vector<store::StoreModel> catalog() const;
  // Resolves a name without loading it (store mode; throws HttpError 404).
  store::StoreModel find(const std::string& name) const;

  // Cancels the loaded model's jobs and makes waiting and later acquires fail (shutdown).
  void cancel_all();

 private:
  friend class ModelLease;
  void release();
  Lease lease_locked(const store::StoreModel* as = nullptr);

  const bool store_mode_;
  Catalog catalog_;
  Resolver resolver_;
  Loader loader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<ServedModel> current_;
  int leases_ = 0;
  bool switching_ = false;
  bool stopping_ = false;
};

}  // namespace swapmoe::server
