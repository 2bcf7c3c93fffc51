// `swapmoe chat MODEL`: an interactive terminal chat. It renders the conversation with the
// model's chat template (the same engine and queue as `swapmoe serve`) and streams each
// reply as it is generated. Ctrl-C stops a reply (the partial reply stays in the history),
// Ctrl-D (end of input) or /exit quits, /reset forgets the conversation, /stats shows
// speed and expert-cache numbers. Reasoning (<think>...</think>) is shown dimmed.

#include <CLI/CLI.hpp>
#include <algorithm>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "model/model.h"
#include "server/chat_prompt.h"
#include "server/engine.h"
#include "util/error.h"
#include "util/text_file.h"

namespace swapmoe::cli {

namespace {

struct ChatOptions {
  ModelArgs model;
  SamplingArgs sampling;
  std::string system;
  std::string template_file;
  int n_predict = 1024;
  bool parse_special_in_messages = false;
};

volatile std::sig_atomic_t g_interrupted = 0;

void on_sigint(int) { g_interrupted = 1; }

// Reads one line from stdin without its newline. Returns false at end of input. A Ctrl-C
// while waiting for input gives an empty line (the prompt is shown again).
bool read_line(std::string& line) {
  line.clear();
  for (;;) {
    const int c = std::fgetc(stdin);
    if (c == EOF) {
      if (std::ferror(stdin) && errno == EINTR) {
        std::clearerr(stdin);
        line.clear();
        return true;
      }
      return !line.empty();  // a last line without newline still counts
    }
    if (c == '\n') return true;
    line += static_cast<char>(c);
  }
}

void print(const std::string& s) {
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t' || s[a] == '\r')) ++a;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r')) --b;
  return s.substr(a, b - a);
}

std::string trim_ws(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

// What of a streamed reply to show now: nothing before its first visible character, and
// trailing whitespace only once more text follows it.
class Holdback {
 public:
  std::string push(const std::string& text) {
    std::string out;
    for (char c : text) {
      if (std::isspace(static_cast<unsigned char>(c))) {
        if (started_) ws_ += c;
      } else {
        started_ = true;
        out += ws_;
        ws_.clear();
        out += c;
      }
    }
    return out;
  }

 private:
  bool started_ = false;
  std::string ws_;
};

void print_stats(const server::Engine& engine, int64_t ctx_used) {
  const server::EngineMetrics m = engine.metrics();
  std::printf("tokens generated: %llu, prompt tokens: %llu (%llu computed, the rest reused)\n",
              static_cast<unsigned long long>(m.tokens_generated_total),
              static_cast<unsigned long long>(m.prompt_tokens_total),
              static_cast<unsigned long long>(m.prompt_tokens_evaluated));
  std::printf("last reply: %.2f tokens/s; overall decode: %.2f tokens/s\n", m.last_tokens_per_second,
              m.decode_seconds_total > 0 ? static_cast<double>(m.tokens_generated_total) / m.decode_seconds_total : 0.0);
  std::printf("context: %lld of %lld tokens used by the conversation\n", static_cast<long long>(ctx_used),
              static_cast<long long>(engine.model().n_ctx()));
  if (m.has_expert_cache)
    std::printf("expert cache: hit rate %.1f%%, %llu hits, %llu misses, %.1f MiB read\n", 100.0 * m.cache_hit_rate,
                static_cast<unsigned long long>(m.cache_hits), static_cast<unsigned long long>(m.cache_misses),
                static_cast<double>(m.cache_bytes_read) / (1024.0 * 1024.0));
  else
    std::printf("expert cache: none (all experts resident in memory)\n");
  std::fflush(stdout);
}

void chat(const ChatOptions& o) {
  const SamplerParams base = o.sampling.to_params();  // checked before the model is loaded
  const std::string tmpl = o.template_file.empty() ? std::string() : read_whole_file(o.template_file, "the chat template");
  const std::string path = o.model.path.empty() ? default_model_path() : o.model.path;
  auto model = Model::load(path, o.model.to_options());
  server::ChatPrompter prompter(*model, tmpl);
  prompter.set_parse_special_in_messages(o.parse_special_in_messages);
  if (!prompter.has_template())
    std::fprintf(stderr,
                 "swapmoe: warning: %s has no chat template (tokenizer.chat_template), so it was probably not "
                 "trained to chat. Messages are sent as plain \"User: ...\" / \"Assistant:\" text and replies may "
                 "read like continued text. --chat-template-file FILE supplies a template.\n",
                 path.c_str());
  const int64_t n_ctx = model->n_ctx();
  server::Engine engine(std::move(model), 1);
  uint64_t seed = base.seed;

  // Without SA_RESTART a Ctrl-C interrupts a blocking read, so it can be noticed at the prompt.
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);

  const bool tty = isatty(STDOUT_FILENO);
  const char* dim = tty ? "\x1b[2m" : "";
  const char* plain = tty ? "\x1b[0m" : "";
  std::fprintf(stderr, "swapmoe chat: type a message and press Enter. /reset forgets the conversation, /stats shows "
                       "speed, Ctrl-C stops a reply, Ctrl-D exits.\n");

  std::vector<ChatMessage> history;
  if (!o.system.empty()) {
    ChatMessage m;
    m.role = "system";
    m.content = o.system;
    history.push_back(std::move(m));
  }
  int64_t ctx_used = 0;
  std::string line;
  for (;;) {
    print("> ");
    g_interrupted = 0;
    if (!read_line(line)) {
      print("\n");
      break;
    }
    if (g_interrupted) {
      print("\n(Ctrl-D or /exit quits)\n");
      continue;
    }
    const std::string cmd = trim(line);
    if (cmd.empty()) continue;
    if (cmd == "/exit" || cmd == "/quit") break;
    if (cmd == "/reset") {
      history.resize(o.system.empty() ? 0 : 1);
      engine.forget_cache();
      ctx_used = 0;
      print("(conversation cleared)\n");
      continue;
    }
    if (cmd == "/stats") {
      print_stats(engine, ctx_used);
      continue;
    }
    if (cmd == "/help") {
      print("/reset: forget the conversation; /stats: speed and cache numbers; /exit or Ctrl-D: quit; Ctrl-C: stop a "
            "reply\n");
      continue;
    }
    ChatMessage user;
    user.role = "user";
    user.content = line;
    history.push_back(user);

    // Render; when the conversation no longer fits, drop the oldest turns (keeping the
    // system message and the new message) until it does.
    server::Prompt p;
    const size_t first = o.system.empty() ? 0 : 1;
    for (;;) {
      p = prompter.chat(history, nullptr);
      const auto n = static_cast<int64_t>(p.tokens.size());
      if (n + 16 <= n_ctx || history.size() - first <= 1) break;
      history.erase(history.begin() + static_cast<std::ptrdiff_t>(first));
      while (history.size() - first > 1 && history[first].role != "user")
        history.erase(history.begin() + static_cast<std::ptrdiff_t>(first));
      std::fprintf(stderr, "(dropped the oldest turn to fit the context of %lld tokens)\n",
                   static_cast<long long>(n_ctx));
    }
    if (static_cast<int64_t>(p.tokens.size()) >= n_ctx) {
      std::fprintf(stderr, "swapmoe: this message alone has %zu tokens, more than the context of %lld; not sent\n",
                   p.tokens.size(), static_cast<long long>(n_ctx));
      history.pop_back();
      continue;
    }

    server::GenRequest g;
    g.prompt = p.tokens;
    g.sampling = base;
    g.sampling.seed = seed++;  // a fresh draw per reply, reproducible from --seed
    g.max_tokens = o.n_predict;
    g.start_in_think = p.start_in_think;
    g.harmony = p.harmony;
    g.stop = prompter.chat_stops();
    for (const std::string& st : o.model.params.stop) g.stop.push_back(st);
    auto job = std::make_shared<server::Job>(std::move(g));
    engine.submit(job);
    std::string content, reasoning;
    // Whitespace at the start of the reply (the plain format's "Assistant:" is followed by
    // a space) is not shown; whitespace at the end is held back until more text follows,
    // so a reply does not end in blank lines before the next prompt.
    Holdback show_content, show_reasoning;
    bool in_reasoning = false;
    bool done = false;
    while (!done) {
      server::TextDelta d;
      done = job->wait(std::chrono::milliseconds(50), d);
      if (g_interrupted && !job->cancelled()) job->cancel();
      if (!d.reasoning.empty()) {
        reasoning += d.reasoning;
        const std::string out = show_reasoning.push(d.reasoning);
        if (!out.empty()) {
          if (!in_reasoning) print(dim);
          in_reasoning = true;
          print(out);
        }
      }
      if (!d.content.empty()) {
        content += d.content;
        const std::string out = show_content.push(d.content);
        if (!out.empty()) {
          if (in_reasoning) {
            print(plain);
            print("\n\n");
            in_reasoning = false;
          }
          print(out);
        }
      }
    }
    if (in_reasoning) print(plain);
    const server::GenResult& r = job->result();
    if (r.finish_reason == "cancelled") print(" [stopped]");
    if (r.finish_reason == "length") print(" [reply limit reached]");
    print("\n");
    if (r.finish_reason == "error") {
      std::fprintf(stderr, "swapmoe: error: %s\n", r.error.c_str());
      history.pop_back();
      continue;
    }
    ChatMessage reply;
    reply.role = "assistant";
    reply.content = trim_ws(content);
    if (!reasoning.empty()) reply.reasoning_content = trim_ws(reasoning);
    history.push_back(std::move(reply));
    ctx_used = r.prompt_tokens + r.completion_tokens;
  }
}

}  // namespace

Command add_chat_command(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  CLI::App* sub = app.add_subcommand("chat", "Chat with a model in the terminal");
  add_model_args(sub, o->model, /*model_optional=*/true);
  add_sampling_args(sub, o->sampling);
  CLI::Option* n_option = sub->add_option("-n,--n-predict", o->n_predict, "Longest reply in tokens (-1: until the context is full)")
      ->capture_default_str()
      ->check(CLI::Range(-1, 1 << 30));
  sub->add_option("--system", o->system, "System message");
  sub->add_flag("--parse-special-in-messages", o->parse_special_in_messages,
               "Let control-token texts typed in messages become control tokens (by default they stay text)");
  sub->add_option("--chat-template-file", o->template_file,
                  "Jinja chat template to use instead of the model's tokenizer.chat_template");
  return {sub, [o, n_option] {
            o->model.resolve();
            o->sampling.apply_defaults(o->model.params);
            const auto& p = o->model.params;
            if (p.num_predict && n_option->count() == 0) o->n_predict = static_cast<int>(std::clamp<int64_t>(*p.num_predict, -1, 1 << 30));
            chat(*o);
          }};
}

}  // namespace swapmoe::cli
