// `swapmoe serve MODEL`: the HTTP server (OpenAI and ollama APIs, see src/server/server.h).
// It binds to 127.0.0.1 unless --host says otherwise, prints one "listening on" line on
// stderr once it accepts connections, and stops cleanly on SIGINT or SIGTERM.

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <thread>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "gguf/gguf_split.h"
#include "model/model.h"
#include "server/server.h"
#include "store/store.h"
#include "util/error.h"
#include "util/text_file.h"

namespace swapmoe::cli {

namespace {

struct ServeOptions {
  ModelArgs model;
  server::ServerConfig cfg;
  std::string alias;
  std::string template_file;
  int max_queue = 64;
  bool no_batching = false;
  CLI::Option* api_key_option = nullptr;
  bool parse_special_in_messages = false;
};

// The name clients see: --alias, else the file name without directory and ".gguf" (and
// without "-00001-of-0000N" for the first part of a split model).
std::string model_name(const std::string& path) {
  std::string n = path.substr(path.find_last_of('/') + 1);
  std::string prefix;
  uint32_t no = 0, count = 0;
  if (gguf_split_name(n, &prefix, &no, &count)) n = prefix + ".gguf";
  if (n.size() > 5 && n.compare(n.size() - 5, 5, ".gguf") == 0) n.resize(n.size() - 5);
  return n.empty() ? "model" : n;
}

// Loopback addresses and names: binding there keeps the server to this machine.
bool is_loopback_host(const std::string& h) {
  return h == "localhost" || h == "::1" || h == "[::1]" || h.rfind("127.", 0) == 0;
}

void serve(ServeOptions& o) {
  // An empty key would be a typo such as --api-key "$UNSET": it must not mean "no key".
  if (o.api_key_option && o.api_key_option->count() > 0 && o.cfg.api_key.empty())
    fail("--api-key '': give a key, or leave --api-key out for no authentication");
  if (!is_loopback_host(o.cfg.host) && o.cfg.api_key.empty())
    std::fprintf(stderr,
                 "swapmoe: warning: serving on %s, beyond this machine, without --api-key: anyone who can reach "
                 "the port can use the model\n",
                 o.cfg.host.c_str());
  // A client that disconnects makes a write fail; that must be an error code, not SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  // SIGINT/SIGTERM are taken by one thread (sigwait); every other thread, created after
  // this point (the model's thread pool included), inherits the blocked mask. Before the
  // server runs, a signal ends the process at once (a long model load can be interrupted);
  // once it runs, a signal cancels the generations and stops the server cleanly.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::mutex mu;
  server::ModelRegistry* running_models = nullptr;
  server::ApiServer* running_api = nullptr;
  bool finished = false;
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    std::lock_guard<std::mutex> lk(mu);
    if (finished) return;
    if (!running_api) {
      std::fprintf(stderr, "swapmoe: interrupted\n");
      std::_Exit(128 + sig);
    }
    running_models->cancel_all();
    running_api->stop();
  });
  struct Joiner {  // wakes and joins the stopper on every way out of this function
    std::thread& t;
    std::mutex& mu;
    bool& finished;
    ~Joiner() {
      {
        std::lock_guard<std::mutex> lk(mu);
        finished = true;
      }
      pthread_kill(t.native_handle(), SIGTERM);
      t.join();
    }
  } joiner{stopper, mu, finished};

  const std::string tmpl = o.template_file.empty() ? std::string() : read_whole_file(o.template_file, "the chat template");
  // Loads one model with the command's options, its store's num_ctx as the --ctx default.
  auto load = [&o, &tmpl](const std::string& path, const store::ModelParams& params) {
    ModelOptions mopts = o.model.to_options();
    // One model sequence (KV cache) per slot; they share the context (and its memory).
    mopts.n_sequences = o.cfg.parallel;
    if (params.num_ctx && *params.num_ctx > 0 && (!o.model.ctx_option || o.model.ctx_option->count() == 0))
      mopts.n_ctx = *params.num_ctx;
    auto served = std::make_unique<server::ServedModel>();
    auto model = Model::load(path, mopts);
    served->owned_prompter = std::make_unique<server::ChatPrompter>(*model, tmpl);
    served->owned_prompter->set_parse_special_in_messages(o.parse_special_in_messages);
    if (!served->owned_prompter->has_template())
      std::fprintf(stderr,
                   "swapmoe: warning: %s has no chat template (tokenizer.chat_template), so it was probably not "
                   "trained to chat; chat requests are sent as plain \"User: ...\" / \"Assistant:\" text "
                   "(--chat-template-file FILE supplies a template)\n",
                   path.c_str());
    server::EngineOptions eopts;
    eopts.max_queue = o.max_queue;
    eopts.batching = !o.no_batching;
    served->owned_engine = std::make_unique<server::Engine>(std::move(model), eopts);
    served->engine = served->owned_engine.get();
    served->prompter = served->owned_prompter.get();
    served->path = path;
    served->params = params;
    return served;
  };
  std::unique_ptr<server::ServedModel> single;
  std::unique_ptr<server::ModelRegistry> models;
  std::string what;
  if (o.model.path.empty()) {
    // No MODEL: the stores, each model loaded when a request names it (model_registry.h).
    models = std::make_unique<server::ModelRegistry>(
        [] { return store::list_models(nullptr); }, [](const std::string& name) { return store::resolve_store_name(name); },
        [&load](const store::StoreModel& m) {
          auto served = load(m.path, m.params);
          served->name = m.name;
          return served;
        });
    std::vector<std::string> problems;
    const size_t n = store::list_models(&problems).size();
    for (const std::string& p : problems) std::fprintf(stderr, "swapmoe: skipped: %s\n", p.c_str());
    what = cat("the models of the ollama store ", store::ollama_models_dir(), " and the Hugging Face cache ",
               store::hf_hub_dir(), " (", n, " now; each loaded when a request names it, one at a time)");
    o.cfg.model_name.clear();
  } else {
    o.model.resolve();
    single = load(o.model.path, o.model.params);
    o.cfg.model_name = !o.alias.empty() ? o.alias : !o.model.name.empty() && o.model.name != o.model.path
                                                         ? o.model.name
                                                         : model_name(o.model.path);
    single->name = o.cfg.model_name;
    models = std::make_unique<server::ModelRegistry>(*single->engine, *single->prompter, o.cfg.model_name,
                                                     o.model.params);
    const int64_t n_ctx = single->engine->model().n_ctx();
    what = o.cfg.parallel > 1 ? cat(o.cfg.model_name, " (", o.cfg.parallel, " slots, context ", n_ctx,
                                    " tokens each: --ctx is shared among the slots)")
                              : cat(o.cfg.model_name, " (1 slot, context ", n_ctx, " tokens)");
  }
  server::ApiServer api(*models, o.cfg);
  const int port = api.bind();
  {
    std::lock_guard<std::mutex> lk(mu);
    running_models = models.get();
    running_api = &api;
  }
  std::fprintf(stderr, "swapmoe: serving %s on http://%s:%d\n", what.c_str(), o.cfg.host.c_str(), port);
  std::fflush(stderr);
  api.serve();
  {
    std::lock_guard<std::mutex> lk(mu);
    finished = true;
    running_models = nullptr;
    running_api = nullptr;
  }
  std::fprintf(stderr, "swapmoe: server stopped\n");
}

}  // namespace

Command add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* sub = app.add_subcommand("serve", "Serve a model over HTTP (OpenAI and ollama APIs)");
  add_model_args(sub, o->model);
  sub->get_option("MODEL")
      ->required(false)
      ->description(std::string(kModelHelp) +
                    " (default: every model of ollama's store and the Hugging Face cache, loaded when a request names it)");
  sub->add_option("--host", o->cfg.host, "Address to listen on (default loopback only)")->capture_default_str();
  sub->add_option("--port", o->cfg.port, "Port (0: any free port)")->capture_default_str()->check(CLI::Range(0, 65535));
  o->api_key_option =
      sub->add_option("--api-key", o->cfg.api_key, "Require 'Authorization: Bearer KEY' on every endpoint but /health");
  sub->add_flag("--parse-special-in-messages", o->parse_special_in_messages,
               "Let control-token texts typed in messages (\"<|im_end|>\") become control tokens, as before; by "
               "default they stay text, so a user cannot forge turns");
  sub->add_option("--allow-host", o->cfg.allow_hosts,
                  "Host name clients may use besides IP addresses and localhost (repeatable; '*': any). Other "
                  "names are refused, which stops DNS-rebinding pages");
  sub->add_option("--allow-origin", o->cfg.allow_origins,
                  "Browser origin (https://app.example) whose pages may call the API, with CORS (repeatable; '*': "
                  "any). Requests from other origins are refused");
  sub->add_option("--parallel", o->cfg.parallel,
                  "Requests generated at once, each in a slot with its own KV cache; each step evaluates every slot's "
                  "next tokens in one forward pass (continuous batching). The slots share the context (--ctx) and "
                  "its memory equally")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  sub->add_flag("--no-batching", o->no_batching,
               "Let the --parallel slots take turns, one forward pass per slot and token, instead of one pass per "
               "step for all of them (for comparison; the answers are the same)");
  sub->add_option("--max-queue", o->max_queue, "Requests allowed to wait; more get HTTP 503")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  sub->add_option("--alias", o->alias, "Model name shown to clients (default: the file name)");
  sub->add_option("--chat-template-file", o->template_file,
                  "Jinja chat template to use instead of the model's tokenizer.chat_template");
  return {sub, [o] { serve(*o); }};
}

}  // namespace swapmoe::cli
