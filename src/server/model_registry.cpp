#include "server/model_registry.h"

#include <cstdio>

#include "gguf/gguf.h"
#include "server/api_util.h"
#include "util/error.h"

namespace swapmoe::server {

ModelLease::~ModelLease() {
  // Let go of the model before telling the registry: once the last lease is back the
  // registry may unload the model, and it must be the one to destroy it (an engine
  // destroyed by its own worker, which drops the jobs and so their leases, would join
  // itself).
  model_.reset();
  registry_->release();
}

ModelRegistry::ModelRegistry(Engine& engine, const ChatPrompter& prompter, std::string name, store::ModelParams params)
    : store_mode_(false) {
  auto m = std::make_shared<ServedModel>();
  m->name = std::move(name);
  m->path = engine.model().file().path();
  m->params = std::move(params);
  m->engine = &engine;
  m->prompter = &prompter;
  current_ = std::move(m);
}

ModelRegistry::ModelRegistry(Catalog catalog, Resolver resolver, Loader loader)
    : store_mode_(true), catalog_(std::move(catalog)), resolver_(std::move(resolver)), loader_(std::move(loader)) {}

ModelRegistry::~ModelRegistry() {
  // The server has stopped, but the engine's worker may still hold jobs (it drops a job
  // after its answer was delivered), and each holds a lease that refers to this registry.
  // Cancel them and wait until every lease is back; then unload, which ends the worker.
  // Whoever destroys the registry must hold no lease itself (the server's handlers have
  // returned by then).
  cancel_all();
  std::shared_ptr<ServedModel> last;
  {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return leases_ == 0; });
    last = std::move(current_);
  }
  last.reset();
}

Lease ModelRegistry::lease_locked(const store::StoreModel* as) {
  ++leases_;
  if (as) return std::make_shared<ModelLease>(this, current_, as->name, as->params);
  return std::make_shared<ModelLease>(this, current_, current_->name, current_->params);
}

void ModelRegistry::release() {
  // Notified under the lock: the destructor, waiting for the last lease, may free the
  // registry as soon as this lock is released.
  std::lock_guard<std::mutex> lk(mu_);
  --leases_;
  cv_.notify_all();
}

store::StoreModel ModelRegistry::find(const std::string& name) const {
  try {
    return resolver_(name);
  } catch (const HttpError&) {
    throw;
  } catch (const Error& e) {
    // The reason (store paths, closest names) goes to the server's log, not to the client.
    std::fprintf(stderr, "swapmoe: request for model '%s': %s\n", name.c_str(), e.what());
    throw HttpError(404, cat("model '", name, "' not found (GET /api/tags lists the models)"), "not_found_error");
  }
}

Lease ModelRegistry::acquire(const std::optional<std::string>& name) {
  if (!store_mode_) {
    std::lock_guard<std::mutex> lk(mu_);
    return lease_locked();
  }
  if (!name || name->empty())
    throw HttpError(400, "'model' is required: this server serves the models of its stores (GET /api/tags lists them)");
  const store::StoreModel wanted = find(*name);
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    if (stopping_) throw HttpError(503, "the server is shutting down", "server_busy");
    // The same file loaded with the same context serves every name that points to it.
    if (!switching_ && current_ && current_->path == wanted.path && current_->params.num_ctx == wanted.params.num_ctx)
      return lease_locked(&wanted);
    if (!switching_) break;
    cv_.wait(lk);  // another request is switching models; then look again
  }
  // Switch: wait for the loaded model's requests to finish, unload it, load ours.
  switching_ = true;
  cv_.wait(lk, [&] { return leases_ == 0 || stopping_; });
  if (stopping_) {
    switching_ = false;
    cv_.notify_all();
    throw HttpError(503, "the server is shutting down", "server_busy");
  }
  std::shared_ptr<ServedModel> old = std::move(current_);
  lk.unlock();
  if (old) std::fprintf(stderr, "swapmoe: unloading %s to load %s\n", old->name.c_str(), wanted.name.c_str());
  old.reset();  // joins its engine's worker and frees its memory before the next load
  std::shared_ptr<ServedModel> loaded;
  std::string error;
  try {
    std::fprintf(stderr, "swapmoe: loading %s (%s)\n", wanted.name.c_str(), wanted.path.c_str());
    loaded = loader_(wanted);
  } catch (const std::exception& e) {
    error = e.what();
  }
  lk.lock();
  switching_ = false;
  cv_.notify_all();
  if (!loaded) throw HttpError(500, cat("model '", wanted.name, "' failed to load: ", error), "server_error");
  current_ = std::move(loaded);
  current_->params = wanted.params;
  return lease_locked(&wanted);
}

Lease ModelRegistry::loaded() {
  std::lock_guard<std::mutex> lk(mu_);
  if (!current_ || switching_) return nullptr;
  return lease_locked();
}

std::vector<store::StoreModel> ModelRegistry::catalog() const {
  if (store_mode_) return catalog_();
  store::StoreModel m;
  m.name = current_->name;
  m.path = current_->path;
  m.source = "file";
  m.parts = {m.path};
  m.size = current_->engine->model().file().file_size();
  return {m};
}

void ModelRegistry::cancel_all() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (store_mode_) stopping_ = true;
    if (current_) current_->engine->cancel_all();
  }
  cv_.notify_all();
}

}  // namespace swapmoe::server
