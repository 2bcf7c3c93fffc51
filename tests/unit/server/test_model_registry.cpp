// `swapmoe serve` without MODEL: an ollama store with two tiny models (tests/unit/model's
// tiny_model writer, different seeds) served through a ModelRegistry. Checks the listings,
// on-demand loading and switching (greedy output equals the model run directly), 404 in
// both APIs' error shapes, and that a switch waits for the loaded model's leases.
#include <gtest/gtest.h>
#include <httplib.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "model/model.h"
#include "server/api_util.h"
#include "server/chat_prompt.h"
#include "server/engine.h"
#include "server/model_registry.h"
#include "server/server.h"
#include "store/ollama_store.h"
#include "tiny_model.h"
#include "util/error.h"

using namespace swapmoe;
using namespace swapmoe::server;
namespace fs = std::filesystem;

namespace {

void write_file(const std::string& path, const std::string& content) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

class StoreServer : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = std::string(SWAPMOE_BUILD_DIR) + "/registry-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    // Two models: alpha (seed 1) and beta (seed 2), in blobs named by fake digests.
    for (auto [name, seed, c] : {std::tuple{"alpha", 1u, 'a'}, std::tuple{"beta", 2u, 'b'}}) {
      test::TinyOptions o;
      o.seed = seed;
      const std::string blob = root_ + "/blobs/sha256-" + std::string(64, c);
      fs::create_directories(root_ + "/blobs");
      test::write_tiny_model(blob, test::tiny_config(Arch::Qwen3Moe), o);
      write_file(root_ + "/manifests/registry.ollama.ai/library/" + name + "/latest",
                 R"({"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:)" +
                     std::string(64, c) + R"(","size":1}]})");
    }
    loads_ = 0;
  }
  void TearDown() override { fs::remove_all(root_); }

  std::unique_ptr<ModelRegistry> registry() {
    const std::string root = root_;
    return std::make_unique<ModelRegistry>(
        [root] { return store::list_ollama(root, nullptr); },
        [root](const std::string& n) { return store::resolve_ollama(root, n); },
        [this](const store::StoreModel& m) {
          ++loads_;
          ModelOptions mo;
          mo.n_threads = 1;
          mo.n_ctx = 128;
          auto model = Model::load(m.path, mo);
          auto s = std::make_unique<ServedModel>();
          s->name = m.name;
          s->path = m.path;
          s->owned_prompter = std::make_unique<ChatPrompter>(*model, "");
          s->owned_engine = std::make_unique<Engine>(std::move(model), 8);
          s->engine = s->owned_engine.get();
          s->prompter = s->owned_prompter.get();
          return s;
        });
  }

  // Greedy ids of a raw prompt on the model file itself (the reference).
  std::vector<int32_t> reference(const std::string& blob, const std::string& prompt, int n) {
    ModelOptions mo;
    mo.n_threads = 1;
    mo.n_ctx = 128;
    auto m = Model::load(blob, mo);
    std::vector<int32_t> toks = m->tokenizer().encode(prompt, true, true);
    std::vector<int32_t> out;
    const float* logits = m->forward_batch(toks, 0);
    int64_t pos = static_cast<int64_t>(toks.size());
    for (int i = 0; i < n; ++i) {
      const int64_t nv = m->config().n_vocab;
      const int32_t id = static_cast<int32_t>(std::max_element(logits, logits + nv) - logits);
      if (m->tokenizer().is_eog(id)) break;
      out.push_back(id);
      logits = m->forward(id, pos++);
    }
    return out;
  }

  std::string root_;
  std::atomic<int> loads_{0};
};

}  // namespace

TEST_F(StoreServer, ListsLoadsOnDemandAndAnswers404) {
  auto models = registry();
  ServerConfig cfg;
  cfg.port = 0;
  cfg.http_threads = 8;
  ApiServer api(*models, cfg);
  const int port = api.bind();
  std::thread t([&] { api.serve(); });
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60, 0);

  // Listings describe both models without loading either.
  auto tags = c.Get("/api/tags");
  ASSERT_TRUE(tags);
  ASSERT_EQ(tags->status, 200);
  auto tj = nlohmann::json::parse(tags->body)["models"];
  ASSERT_EQ(tj.size(), 2u);
  EXPECT_EQ(tj[0]["name"], "alpha:latest");
  EXPECT_EQ(tj[1]["name"], "beta:latest");
  EXPECT_EQ(tj[0]["details"]["family"], "qwen3moe");
  EXPECT_EQ(tj[0]["digest"], std::string(64, 'a'));
  auto v1 = c.Get("/v1/models");
  ASSERT_TRUE(v1);
  EXPECT_EQ(nlohmann::json::parse(v1->body)["data"][1]["id"], "beta:latest");
  auto show = c.Post("/api/show", R"({"model": "beta"})", "application/json");
  ASSERT_TRUE(show);
  EXPECT_EQ(show->status, 200);
  EXPECT_EQ(nlohmann::json::parse(show->body)["details"]["family"], "qwen3moe");
  auto ps = c.Get("/api/ps");
  ASSERT_TRUE(ps);
  EXPECT_EQ(nlohmann::json::parse(ps->body)["models"].size(), 0u);
  EXPECT_EQ(loads_.load(), 0);

  // A model that is not there: 404 in each API's error shape; no load.
  auto o404 = c.Post("/api/generate", R"({"model": "gamma", "prompt": "hi"})", "application/json");
  ASSERT_TRUE(o404);
  EXPECT_EQ(o404->status, 404);
  EXPECT_TRUE(nlohmann::json::parse(o404->body)["error"].is_string());
  auto a404 = c.Post("/v1/chat/completions", R"({"model": "../../etc/passwd", "messages": [{"role":"user","content":"x"}]})",
                     "application/json");
  ASSERT_TRUE(a404);
  EXPECT_EQ(a404->status, 404);
  EXPECT_EQ(nlohmann::json::parse(a404->body)["error"]["type"], "not_found_error");
  auto s404 = c.Post("/api/show", R"({"model": "gamma"})", "application/json");
  ASSERT_TRUE(s404);
  EXPECT_EQ(s404->status, 404);
  auto m404 = c.Get("/v1/models/gamma");
  ASSERT_TRUE(m404);
  EXPECT_EQ(m404->status, 404);
  auto nomodel = c.Post("/v1/completions", R"({"prompt": "hi"})", "application/json");
  ASSERT_TRUE(nomodel);
  EXPECT_EQ(nomodel->status, 400);
  EXPECT_EQ(loads_.load(), 0);

  // On demand: alpha, then beta (alpha unloaded), then alpha again; each answer is what the
  // model computes on its own.
  const std::string blob_a = root_ + "/blobs/sha256-" + std::string(64, 'a');
  const std::string blob_b = root_ + "/blobs/sha256-" + std::string(64, 'b');
  auto complete = [&](const std::string& model) {
    auto r = c.Post("/v1/completions",
                    R"({"model": ")" + model + R"(", "prompt": "hello", "max_tokens": 6, "temperature": 0})",
                    "application/json");
    EXPECT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
    return nlohmann::json::parse(r->body);
  };
  const auto ra = complete("alpha");
  EXPECT_EQ(ra["model"], "alpha:latest");
  EXPECT_EQ(ra["usage"]["completion_tokens"], reference(blob_a, "hello", 6).size());
  EXPECT_EQ(loads_.load(), 1);
  complete("alpha:latest");  // same model: no reload
  EXPECT_EQ(loads_.load(), 1);
  auto psb = c.Get("/api/ps");
  EXPECT_EQ(nlohmann::json::parse(psb->body)["models"][0]["name"], "alpha:latest");
  const auto rb = complete("beta");
  EXPECT_EQ(rb["model"], "beta:latest");
  EXPECT_EQ(loads_.load(), 2);
  psb = c.Get("/api/ps");
  ASSERT_EQ(nlohmann::json::parse(psb->body)["models"].size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(psb->body)["models"][0]["name"], "beta:latest");
  // Switching back and forth gives the same answers: each load is the model itself.
  const auto rb2 = complete("beta");
  EXPECT_EQ(rb2["choices"][0]["text"], rb["choices"][0]["text"]);
  EXPECT_EQ(loads_.load(), 2);
  const auto ra2 = complete("alpha");
  EXPECT_EQ(ra2["choices"][0]["text"], ra["choices"][0]["text"]);
  EXPECT_EQ(loads_.load(), 3);
  auto health = c.Get("/health");
  EXPECT_EQ(nlohmann::json::parse(health->body)["model"], "alpha:latest");

  api.stop();
  t.join();
}

TEST_F(StoreServer, SwitchWaitsForTheLoadedModelsLeases) {
  auto models = registry();
  Lease a = models->acquire(std::string("alpha"));
  EXPECT_EQ(a->name(), "alpha:latest");
  std::atomic<bool> got_b{false};
  std::thread t([&] {
    Lease b = models->acquire(std::string("beta"));
    got_b = b->name() == "beta:latest";
  });
  // While alpha is leased, beta cannot be loaded (one model at a time).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_FALSE(got_b.load());
  EXPECT_EQ(loads_.load(), 1);
  EXPECT_EQ(models->loaded(), nullptr);  // a switch is under way
  a.reset();
  t.join();
  EXPECT_TRUE(got_b.load());
  EXPECT_EQ(loads_.load(), 2);
  // A name that is not there is a 404 HttpError; a missing name a 400.
  try {
    models->acquire(std::string("gamma"));
    ADD_FAILURE() << "no error";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), 404);
  }
  try {
    models->acquire(std::nullopt);
    ADD_FAILURE() << "no error";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), 400);
  }
}

// The registry may go (server shutdown) while its engine's worker still holds a job, and
// with it a lease: a job is dropped only after its answer was delivered. A lease refers to
// the registry, so its destructor must cancel that job and wait for the lease (before: a use
// after free, seen by TSan in ListsLoadsOnDemandAndAnswers404), and the model must then be
// unloaded from this thread, not from the worker when it drops the last lease (an engine
// whose worker destroys it would join itself: std::terminate).
TEST_F(StoreServer, DestroyedWhileAJobStillHoldsALease) {
  for (int round = 0; round < 5; ++round) {
    auto models = registry();
    Lease lease = models->acquire(std::string("alpha"));
    GenRequest g;
    g.prompt = lease->engine().model().tokenizer().encode("Once upon a time", true, true);
    g.max_tokens = -1;  // until the context is full: still running when the registry goes
    g.hold = lease;
    auto job = std::make_shared<Job>(std::move(g));
    ASSERT_TRUE(lease->engine().submit(job));
    std::weak_ptr<Job> watch = job;
    job.reset();
    lease.reset();  // the job holds the only lease now
    models.reset();
    EXPECT_TRUE(watch.expired());  // cancelled, finished, dropped, and its engine unloaded
  }
}
