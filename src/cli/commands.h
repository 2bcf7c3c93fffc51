#pragma once
// The `swapmoe` subcommands. Each cmd_*.cpp adds its subcommand (options and help) to the
// application and returns the action to run when that subcommand was chosen. main.cpp
// parses once, runs the chosen action, and is the only place that catches errors.

#include <functional>

namespace CLI {
class App;
}

namespace swapmoe::cli {

struct Command {
  CLI::App* app = nullptr;        // the subcommand, to ask whether it was parsed
  std::function<void()> run;      // throws swapmoe::Error on failure
};

Command add_run_command(CLI::App& app);
Command add_eval_command(CLI::App& app);
Command add_tokenize_command(CLI::App& app);
Command add_info_command(CLI::App& app);
Command add_quantize_command(CLI::App& app);
Command add_serve_command(CLI::App& app);
Command add_chat_command(CLI::App& app);
Command add_plan_command(CLI::App& app);
Command add_bench_command(CLI::App& app);
Command add_profile_command(CLI::App& app);
Command add_sweep_command(CLI::App& app);
Command add_list_command(CLI::App& app);

}  // namespace swapmoe::cli
