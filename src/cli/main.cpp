// Entry point of the `swapmoe` command line tool. This is the one place that catches
// errors: a swapmoe::Error (bad input, missing file, ...) or a command-line parse error
// becomes one "swapmoe: error: ..." line on stderr and exit status 1, never a crash.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <new>
#include <vector>

#include "cli/commands.h"
#include "util/error.h"

namespace {

// The name of the subcommand the user typed (for the "see --help" hint), or "".
std::string chosen_name(const CLI::App& app) {
  for (const CLI::App* sub : app.get_subcommands()) return sub->get_name();
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace swapmoe::cli;
  CLI::App app{"swapmoe: run Mixture-of-Experts language models in GGUF format, larger than memory", "swapmoe"};
  app.require_subcommand(1, 1);
  app.set_version_flag("--version", "swapmoe 0.1");
  app.set_help_all_flag("--help-all", "Print help for all subcommands and exit");

  std::vector<Command> commands = {add_run_command(app), add_eval_command(app), add_tokenize_command(app),
                                   add_info_command(app), add_quantize_command(app),
                                   add_serve_command(app), add_chat_command(app),
                                   add_plan_command(app), add_bench_command(app), add_sweep_command(app),
                                   add_profile_command(app), add_list_command(app)};
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help / --version: printed on stdout, exit 0
  } catch (const CLI::ParseError& e) {
    // One line, as every other error: the usage hint rides on it, and any line break CLI11
    // puts in its message is folded, so `2>&1 | wc -l` is 1 and scripts can show it as is.
    const std::string sub = chosen_name(app);
    std::string msg = e.what();
    for (char& c : msg)
      if (c == '\n' || c == '\r') c = ' ';
    while (!msg.empty() && msg.back() == ' ') msg.pop_back();
    std::cerr << "swapmoe: error: " << msg << " (see 'swapmoe " << (sub.empty() ? "" : sub + " ") << "--help')\n";
    return 1;
  }

  try {
    for (auto& c : commands) {
      if (c.app->parsed()) {
        c.run();
        break;
      }
    }
    std::fflush(stdout);
  } catch (const swapmoe::Error& e) {
    std::fflush(stdout);
    std::cerr << "swapmoe: error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    std::cerr << "swapmoe: error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    // Anything else is a bug in swapmoe, but it still deserves a clean exit.
    std::fflush(stdout);
    std::cerr << "swapmoe: error: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
