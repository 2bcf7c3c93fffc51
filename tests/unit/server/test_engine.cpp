// Engine, ChatPrompter and ApiServer on a tiny random-weight model (tests/unit/model's
// tiny_model helper: byte vocabulary, <|endoftext|> = 256 = EOS, <|im_start|> = 257).
// The engine's greedy output is compared with a plain forward/argmax loop on a separately
// loaded Model, which is the reference for what a request must produce.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <thread>

#include "gguf/gguf.h"
#include "gguf/gguf_writer.h"
#include "model/model.h"
#include "sample/sampler.h"
#include "server/chat_prompt.h"
#include "server/engine.h"
#include "server/server.h"
#include "tiny_model.h"

using namespace swapmoe;
using namespace swapmoe::server;

namespace {

// Every wait on a job is bounded: a job that never finishes fails the test with a message
// instead of hanging it until CTest's timeout (kJobDeadline is far above any real run).
constexpr auto kJobDeadline = std::chrono::seconds(120);
bool wait_done(Job& job, TextDelta& d, std::chrono::milliseconds step = std::chrono::milliseconds(100)) {
  const auto until = std::chrono::steady_clock::now() + kJobDeadline;
  while (!job.wait(step, d)) {
    if (std::chrono::steady_clock::now() > until) {
      ADD_FAILURE() << "job not done after " << kJobDeadline.count() << " s";
      return false;
    }
  }
  return true;
}
// Waits until the job has produced some text (or finished); bounded like wait_done.
bool wait_text(Job& job, TextDelta& d) {
  const auto until = std::chrono::steady_clock::now() + kJobDeadline;
  while (d.empty()) {
    if (job.wait(std::chrono::milliseconds(50), d)) return true;
    if (std::chrono::steady_clock::now() > until) {
      ADD_FAILURE() << "job produced no text in " << kJobDeadline.count() << " s";
      return false;
    }
  }
  return true;
}

const char* kTemplate =
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|endoftext|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

// Copies a GGUF, adding tokenizer.chat_template.
void copy_with_template(const std::string& src, const std::string& dst, const std::string& tmpl) {
  auto in = GgufFile::open(src);
  GgufWriter w;
  w.copy_metadata(*in);
  w.set_str("tokenizer.chat_template", tmpl);
  for (const auto& t : in->tensors()) w.add_tensor_info(t.name, t.type, t.ne);
  w.begin(dst);
  std::vector<uint8_t> buf;
  for (const auto& t : in->tensors()) {
    buf.resize(t.nbytes);
    in->read_at(t.part, t.offset, buf.data(), buf.size());
    w.write_tensor_data(buf.data(), buf.size());
  }
  w.finish();
}

class ServerModel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    plain_path_ = test::temp_path("server_plain");
    tmpl_path_ = test::temp_path("server_tmpl");
    test::write_tiny_model(plain_path_, test::tiny_config(Arch::Qwen3Moe), {});
    copy_with_template(plain_path_, tmpl_path_, kTemplate);
  }
  static void TearDownTestSuite() {
    std::remove(plain_path_.c_str());
    std::remove(tmpl_path_.c_str());
  }
  static std::unique_ptr<Model> load(const std::string& p, int n_seq = 1, int64_t ctx_per_seq = 128) {
    ModelOptions o;
    o.n_threads = 1;
    o.n_ctx = ctx_per_seq * n_seq;
    o.n_sequences = n_seq;
    return Model::load(p, o);
  }
  // A model behind an engine (8 queued jobs) with its prompter, and the HTTP tests' server
  // configuration: any free port, model name "tiny".
  struct Served {
    explicit Served(std::unique_ptr<Model> m) : prompter(*m, ""), engine(std::move(m), 8) {
      cfg.port = 0;
      cfg.model_name = "tiny";
    }
    ChatPrompter prompter;  // before engine: made from the model that engine then owns
    Engine engine;
    ServerConfig cfg;
  };
  // Greedy continuation computed directly on a Model: the reference.
  static std::vector<int32_t> greedy(Model& m, const std::vector<int32_t>& prompt, int n) {
    m.reset();
    const float* logits = m.forward_batch(prompt, 0);
    std::vector<int32_t> out;
    int64_t pos = static_cast<int64_t>(prompt.size());
    while (static_cast<int>(out.size()) < n) {
      const int32_t id = Sampler::argmax(logits, static_cast<int>(m.config().n_vocab));
      if (m.tokenizer().is_eog(id)) break;
      out.push_back(id);
      if (static_cast<int>(out.size()) == n) break;
      logits = m.forward(id, pos++);
    }
    return out;
  }
  static GenRequest greedy_request(std::vector<int32_t> prompt, int n) {
    GenRequest g;
    g.prompt = std::move(prompt);
    g.sampling.temp = 0;
    g.max_tokens = n;
    return g;
  }
  static GenResult run(Engine& e, GenRequest g, TextDelta* text = nullptr) {
    auto job = std::make_shared<Job>(std::move(g));
    EXPECT_TRUE(e.submit(job));
    TextDelta all;
    EXPECT_TRUE(wait_done(*job, all));
    if (text) *text = all;
    return job->result();
  }
  static std::string plain_path_, tmpl_path_;
};
std::string ServerModel::plain_path_, ServerModel::tmpl_path_;

}  // namespace

TEST_F(ServerModel, PrompterUsesTheModelTemplate) {
  auto m = load(tmpl_path_);
  ChatPrompter p(*m, "");
  ASSERT_TRUE(p.has_template());
  ChatMessage u;
  u.role = "user";
  u.content = "hi";
  const Prompt pr = p.chat({u}, nullptr);
  EXPECT_EQ(pr.text, "<|im_start|>user\nhi<|endoftext|>\n<|im_start|>assistant\n");
  ASSERT_FALSE(pr.tokens.empty());
  EXPECT_EQ(pr.tokens.front(), 257);  // <|im_start|> parsed as the special token
  EXPECT_EQ(pr.tokens, m->tokenizer().encode(pr.text, false, true));
  EXPECT_FALSE(pr.start_in_think);
  // A template given on the command line wins over the model's.
  // (Jinja drops one trailing newline of the template source.)
  ChatPrompter o(*m, "{{ messages[0].content }}<think>\n\n");
  const Prompt po = o.chat({u}, nullptr);
  EXPECT_EQ(po.text, "hi<think>\n");
  EXPECT_TRUE(po.start_in_think);
}

TEST_F(ServerModel, PrompterFallsBackToPlainFormat) {
  auto m = load(plain_path_);
  ChatPrompter p(*m, "");
  EXPECT_FALSE(p.has_template());
  ChatMessage u;
  u.role = "user";
  u.content = "hi";
  EXPECT_EQ(p.chat({u}, nullptr).text, plain_chat_format({u}, true));
  EXPECT_EQ(p.chat_stops(), std::vector<std::string>{"\nUser:"});  // no end-of-turn token
  EXPECT_TRUE(ChatPrompter(*m, kTemplate).chat_stops().empty());
  EXPECT_THROW(ChatPrompter(*m, "{% if %}"), TemplateError);
}

TEST_F(ServerModel, EngineMatchesDirectGreedyAndReusesThePrefix) {
  auto ref = load(tmpl_path_);
  const Tokenizer& tok = ref->tokenizer();
  const std::vector<int32_t> prompt = tok.encode("<|im_start|>user\nhello<|endoftext|>\n<|im_start|>assistant\n", false, true);
  const std::vector<int32_t> want = greedy(*ref, prompt, 8);
  ASSERT_FALSE(want.empty());

  Engine e(load(tmpl_path_), 8);
  TextDelta text;
  const GenResult r = run(e, greedy_request(prompt, 8), &text);
  EXPECT_EQ(r.tokens, want);
  EXPECT_EQ(r.completion_tokens, static_cast<int64_t>(want.size()));
  EXPECT_EQ(r.prompt_tokens, static_cast<int64_t>(prompt.size()));
  EXPECT_EQ(r.prompt_evaluated, r.prompt_tokens);
  std::string pieces;
  for (int32_t id : want) pieces += tok.token_to_piece(id);
  EXPECT_EQ(text.content, pieces);
  EXPECT_EQ(r.finish_reason, want.size() == 8 ? "length" : "stop");

  // The next turn extends the first: only the new tokens are computed, same result as fresh.
  std::vector<int32_t> prompt2 = prompt;
  prompt2.insert(prompt2.end(), want.begin(), want.end());
  const std::vector<int32_t> more = tok.encode("\nok", false, true);
  prompt2.insert(prompt2.end(), more.begin(), more.end());
  const GenResult r2 = run(e, greedy_request(prompt2, 6));
  EXPECT_EQ(r2.tokens, greedy(*ref, prompt2, 6));
  if (want.size() == 8) {
    EXPECT_EQ(r2.prompt_evaluated, static_cast<int64_t>(more.size()) + 1);
  }
  EXPECT_LT(r2.prompt_evaluated, r2.prompt_tokens);

  // An unrelated prompt starts over.
  const GenResult r3 = run(e, greedy_request(tok.encode("abc", false, true), 3));
  EXPECT_EQ(r3.prompt_evaluated, r3.prompt_tokens);

  const EngineMetrics m = e.metrics();
  EXPECT_EQ(m.requests_total, 3u);
  EXPECT_EQ(m.tokens_generated_total, static_cast<uint64_t>(r.completion_tokens + r2.completion_tokens + r3.completion_tokens));
  EXPECT_EQ(m.queue_depth, 0);
}

TEST_F(ServerModel, EngineCancelAndContextLimits) {
  Engine e(load(tmpl_path_), 8);
  const Tokenizer& tok = e.model().tokenizer();
  const std::vector<int32_t> prompt = tok.encode("xyz", false, true);
  GenRequest g = greedy_request(prompt, 1000);
  g.sampling.temp = 1.0f;  // sampled text rarely hits EOS
  g.sampling.top_k = 0;
  g.sampling.top_p = 1;
  g.sampling.min_p = 0;
  g.sampling.seed = 9;

  // A job cancelled before it starts (its client left while it waited) never runs.
  auto job = std::make_shared<Job>(g);
  job->cancel();
  ASSERT_TRUE(e.submit(job));
  TextDelta d;
  ASSERT_TRUE(wait_done(*job, d));
  EXPECT_EQ(job->result().finish_reason, "cancelled");
  EXPECT_EQ(job->result().completion_tokens, 0);
  EXPECT_TRUE(d.empty());
  // (Cancelling mid-generation is tested end to end in tests/server: ollama abort, abuse.)

  // Uncancelled, it runs until the context (128) is full.
  const GenResult full = run(e, g);
  EXPECT_EQ(full.finish_reason == "length", full.completion_tokens == 128 - static_cast<int64_t>(prompt.size()) + 1);

  // A prompt longer than the context is an error, and the engine goes on serving.
  const GenResult big = run(e, greedy_request(std::vector<int32_t>(200, 'a'), 2));
  EXPECT_EQ(big.finish_reason, "error");
  EXPECT_EQ(run(e, greedy_request(prompt, 2)).finish_reason.empty(), false);
}

TEST_F(ServerModel, EngineServesInArrivalOrder) {
  Engine e(load(tmpl_path_), 2);
  const std::vector<int32_t> prompt = e.model().tokenizer().encode("q", false, true);
  std::vector<std::shared_ptr<Job>> jobs;
  for (int i = 0; i < 3; ++i) jobs.push_back(std::make_shared<Job>(greedy_request(prompt, 4)));
  int accepted = 0;
  for (auto& j : jobs) accepted += e.submit(j) ? 1 : 0;
  EXPECT_GE(accepted, 2);  // the queue holds 2; the first may already be running
  // Wait for the last accepted job; FIFO means every earlier one has finished by then.
  TextDelta d;
  auto& last = jobs[static_cast<size_t>(accepted - 1)];
  ASSERT_TRUE(wait_done(*last, d));
  for (int i = 0; i < accepted; ++i) EXPECT_TRUE(jobs[static_cast<size_t>(i)]->wait(std::chrono::milliseconds(0), d));
}

// A stop() that comes between bind() and serve()'s listener start (a SIGTERM right after
// `serve` printed its address) must not be lost: httplib's own stop() acts only on a running
// listener, and such a server used to listen forever (the hostile test hung under load).
// Before serve(): serve() returns at once. Racing serve()'s start: it returns every time.
TEST_F(ServerModel, StopBeforeOrWhileTheListenerStartsIsNotLost) {
  Served sv(load(tmpl_path_));
  auto returns_soon = [](ApiServer& api, bool stop_first) {
    if (stop_first) api.stop();
    auto done = std::async(std::launch::async, [&] { api.serve(); });
    if (!stop_first) api.stop();
    const bool ok = done.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    if (!ok) {
      // The old behaviour: unblock the listener (it runs now) so that the test can end.
      while (done.wait_for(std::chrono::milliseconds(10)) != std::future_status::ready) api.stop();
    }
    done.get();
    return ok;
  };
  {
    ApiServer api(sv.engine, sv.prompter, sv.cfg);
    api.bind();
    EXPECT_TRUE(returns_soon(api, true)) << "stop() before serve() was lost";
  }
  for (int i = 0; i < 50; ++i) {
    ApiServer api(sv.engine, sv.prompter, sv.cfg);
    api.bind();
    ASSERT_TRUE(returns_soon(api, false)) << "stop() racing serve()'s start was lost, round " << i;
  }
}

TEST_F(ServerModel, HttpEndpoints) {
  Served sv(load(tmpl_path_));
  sv.cfg.api_key = "k";
  sv.cfg.http_threads = 8;
  ApiServer api(sv.engine, sv.prompter, sv.cfg);
  const int port = api.bind();
  std::thread t([&] { api.serve(); });
  // A failed ASSERT returns early: the server must still be stopped and joined (a joinable
  // std::thread's destructor would abort the whole test binary).
  struct StopServer {
    ApiServer& api;
    std::thread& t;
    ~StopServer() {
      api.stop();
      t.join();
    }
  } stop_server{api, t};

  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(30, 0);
  httplib::Headers auth = {{"Authorization", "Bearer k"}};
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto noauth = c.Get("/v1/models");
  ASSERT_TRUE(noauth);
  EXPECT_EQ(noauth->status, 401);
  auto models = c.Get("/v1/models", auth);
  ASSERT_TRUE(models);
  EXPECT_EQ(nlohmann::json::parse(models->body)["data"][0]["id"], "tiny");

  auto bad = c.Post("/v1/chat/completions", auth, "{\"messages\": 3}", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_TRUE(nlohmann::json::parse(bad->body)["error"]["message"].is_string());
  auto missing = c.Get("/nowhere", auth);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(nlohmann::json::parse(missing->body).contains("error"));

  // A greedy chat request answers what the model computes for the rendered prompt.
  auto ok = c.Post("/v1/chat/completions", auth,
                   R"({"messages": [{"role": "user", "content": "hello"}], "temperature": 0, "max_tokens": 5})",
                   "application/json");
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->status, 200) << ok->body;
  const auto j = nlohmann::json::parse(ok->body);
  auto ref = load(tmpl_path_);
  const auto want = greedy(*ref, ref->tokenizer().encode(
                                     "<|im_start|>user\nhello<|endoftext|>\n<|im_start|>assistant\n", false, true), 5);
  EXPECT_EQ(j["usage"]["completion_tokens"], want.size());
  EXPECT_EQ(j["choices"][0]["message"]["content"].get<std::string>().size() > 0, !want.empty());

  auto metrics = c.Get("/metrics", auth);
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("swapmoe_requests_total 1\n"), std::string::npos) << metrics->body;
}

// Slots: jobs started in the same round run interleaved, one decode token per slot per
// round, and each produces exactly what it produces alone; a third job waits for a slot.
TEST_F(ServerModel, SlotsInterleaveAndMatchRunningAlone) {
  auto ref = load(tmpl_path_);
  const Tokenizer& tok = ref->tokenizer();
  const std::vector<std::vector<int32_t>> prompts = {
      tok.encode("<|im_start|>user\nhello<|endoftext|>\n<|im_start|>assistant\n", false, true),
      tok.encode("zebra", false, true),
      tok.encode("<|im_start|>user\nq<|endoftext|>\n", false, true),
  };
  const int n[3] = {40, 12, 20};
  std::vector<std::vector<int32_t>> want;
  for (size_t i = 0; i < prompts.size(); ++i) want.push_back(greedy(*ref, prompts[i], n[i]));

  Engine e(load(tmpl_path_, 2), 8);
  EXPECT_EQ(e.n_slots(), 2);
  std::vector<std::shared_ptr<Job>> jobs;
  for (size_t i = 0; i < prompts.size(); ++i) jobs.push_back(std::make_shared<Job>(greedy_request(prompts[i], n[i])));
  ASSERT_TRUE(e.submit(jobs));
  std::vector<GenResult> res;
  for (auto& j : jobs) {
    TextDelta d;
    ASSERT_TRUE(wait_done(*j, d));
    res.push_back(j->result());
  }
  for (size_t i = 0; i < res.size(); ++i) EXPECT_EQ(res[i].tokens, want[i]) << "job " << i;
  // Jobs 0 and 1 started together in slots 0 and 1; job 2 waited for the first free slot.
  EXPECT_EQ(res[0].slot, 0);
  EXPECT_EQ(res[1].slot, 1);
  EXPECT_GE(res[2].slot, 0);
  // Job 1 (the shorter of the first two, if neither ended early) decoded every token
  // while job 0 was generating too.
  const GenResult& shorter = res[0].completion_tokens <= res[1].completion_tokens ? res[0] : res[1];
  if (shorter.completion_tokens > 1) {
    EXPECT_GE(shorter.shared_steps, shorter.completion_tokens - 1);
    EXPECT_GT(e.metrics().decode_steps_shared, 0u);
  }
  const EngineMetrics m = e.metrics();
  EXPECT_EQ(m.slots, 2);
  EXPECT_EQ(m.requests_total, 3u);
  EXPECT_EQ(m.active, 0);
  EXPECT_EQ(m.queue_depth, 0);

  // Each slot kept its conversation: the next turn of job 1's conversation reuses its
  // slot's cache (only the new tokens are computed) and still equals the reference.
  std::vector<int32_t> next = prompts[1];
  next.insert(next.end(), want[1].begin(), want[1].end());
  next.push_back('!');
  const GenResult r = run(e, greedy_request(next, 5));
  EXPECT_EQ(r.tokens, greedy(*ref, next, 5));
  if (res[1].finish_reason == "length" && res[2].slot == 0) {
    EXPECT_EQ(r.slot, 1);
    EXPECT_EQ(r.prompt_evaluated, 2);  // the last generated token was never evaluated, and '!'
  }
}

// Continuous batching: four jobs with prompts of different lengths (one long enough to be
// prefilled in chunks while the others decode), greedy and seeded sampling, run in one
// engine with 4 slots; each answer must equal the same request run alone (a one-slot
// engine, and for greedy the direct reference). Rows of different sequences that got
// mixed up in a step would change the answers: the prompts differ.
TEST_F(ServerModel, BatchedStepsMatchRunningAlone) {
  auto ref = load(tmpl_path_, 1, 512);
  const Tokenizer& tok = ref->tokenizer();
  std::string longtext;
  for (int i = 0; i < 30; ++i) longtext += "the quick brown fox " + std::to_string(i) + " ";
  const std::vector<std::vector<int32_t>> prompts = {
      tok.encode("<|im_start|>user\nhello<|endoftext|>\n<|im_start|>assistant\n", false, true),
      tok.encode("zebra", false, true),
      tok.encode(longtext.substr(0, 400), false, true),  // several steps' worth of prompt
      tok.encode("q", false, true),
  };
  ASSERT_GT(prompts[2].size(), 300u);
  const int n[4] = {20, 12, 6, 24};
  std::vector<GenRequest> reqs;
  for (size_t i = 0; i < prompts.size(); ++i) {
    GenRequest g = greedy_request(prompts[i], n[i]);
    if (i % 2 == 1) {  // seeded sampling
      g.sampling.temp = 0.9f;
      g.sampling.top_k = 0;
      g.sampling.top_p = 1;
      g.sampling.min_p = 0;
      g.sampling.seed = 11 + static_cast<uint32_t>(i);
    }
    reqs.push_back(g);
  }
  std::vector<std::vector<int32_t>> want;
  {
    Engine solo(load(tmpl_path_, 1, 512), 8);
    for (const auto& g : reqs) want.push_back(run(solo, g).tokens);
  }
  for (size_t i = 0; i < reqs.size(); i += 2) EXPECT_EQ(want[i], greedy(*ref, prompts[i], n[i])) << "job " << i;

  for (const bool batching : {true, false}) {
    Engine e(load(tmpl_path_, 4, 512), EngineOptions{8, batching});
    std::vector<std::shared_ptr<Job>> jobs;
    for (const auto& g : reqs) jobs.push_back(std::make_shared<Job>(g));
    ASSERT_TRUE(e.submit(jobs));
    for (size_t i = 0; i < jobs.size(); ++i) {
      TextDelta d;
      ASSERT_TRUE(wait_done(*jobs[i], d));
      EXPECT_EQ(jobs[i]->result().tokens, want[i]) << "job " << i << (batching ? ", batched" : ", turns");
      EXPECT_EQ(jobs[i]->result().slot, static_cast<int>(i));
    }
    const EngineMetrics m = e.metrics();
    EXPECT_EQ(m.requests_total, 4u);
    uint64_t total = 0;
    for (const auto& w : want) total += w.size();
    EXPECT_EQ(m.tokens_sampled_total, total);
    if (batching) {
      // Several slots decoded in one pass, and the long prompt's chunks shared steps with
      // the short prompts' decode tokens.
      EXPECT_GT(m.decode_only_tokens, m.decode_only_steps);
      EXPECT_GT(m.mixed_steps, 0u);
      EXPECT_LT(m.steps_total, m.decode_steps_total);
    } else {
      EXPECT_EQ(m.mixed_steps, 0u);
      EXPECT_EQ(m.decode_only_tokens, m.decode_only_steps);
    }
  }
}

TEST_F(ServerModel, CancelledJobFreesItsSlot) {
  // 1024 positions each: batched, the two endless jobs decode at full speed together, and
  // 128 positions filled up on a loaded machine before the test thread's cancel came.
  Engine e(load(tmpl_path_, 2, 1024), 8);
  const Tokenizer& tok = e.model().tokenizer();
  GenRequest g = greedy_request(tok.encode("xyz", false, true), 100000);
  g.sampling.temp = 1.0f;
  g.sampling.top_k = 0;
  g.sampling.top_p = 1;
  g.sampling.min_p = 0;
  g.sampling.seed = 3;
  // Two endless jobs take both slots; cancelling one lets a third job run.
  auto a = std::make_shared<Job>(g);
  auto b = std::make_shared<Job>(g);
  ASSERT_TRUE(e.submit({a, b}));
  TextDelta d;
  ASSERT_TRUE(wait_text(*a, d));
  a->cancel();
  ASSERT_TRUE(wait_done(*a, d, std::chrono::milliseconds(50)));
  // a, like b below, may have sampled end-of-generation or filled its context before
  // the cancel arrived; one of the two must have been cancelled.
  const std::string& a_reason = a->result().finish_reason;
  EXPECT_TRUE(a_reason == "cancelled" || a_reason == "length" || a_reason == "stop") << a_reason;
  const GenResult c = run(e, greedy_request(tok.encode("q", false, true), 4));
  EXPECT_TRUE(c.finish_reason == "length" || c.finish_reason == "stop");
  b->cancel();
  ASSERT_TRUE(wait_done(*b, d, std::chrono::milliseconds(50)));
  // b samples at temperature 1 in a 1024-token context, so on a slow machine it can
  // fill its context ("length") or sample end-of-generation ("stop") before the cancel
  // arrives; only a cancel that found it running counts as cancelled.
  const std::string& b_reason = b->result().finish_reason;
  EXPECT_TRUE(b_reason == "cancelled" || b_reason == "length" || b_reason == "stop") << b_reason;
  const EngineMetrics m = e.metrics();
  EXPECT_TRUE(a_reason == "cancelled" || b_reason == "cancelled") << a_reason << ", " << b_reason;
  EXPECT_EQ(m.requests_cancelled, (a_reason == "cancelled" ? 1u : 0u) + (b_reason == "cancelled" ? 1u : 0u));
  EXPECT_EQ(m.requests_total, 3u);
  EXPECT_EQ(m.active, 0);
}
