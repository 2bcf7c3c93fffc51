// `swapmoe tokenize MODEL TEXT`: prints the token ids of TEXT as a JSON array. Only the
// vocabulary is read (the GGUF header), never the weights, so it is instant on any file.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "cli/json_out.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"

namespace swapmoe::cli {

namespace {
struct TokenizeOptions {
  std::string model;
  std::string text;
  bool no_special = false;
  bool no_parse_special = false;
};
}  // namespace

Command add_tokenize_command(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* sub = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array (reads only the vocabulary)");
  sub->add_option("MODEL", o->model, std::string(kModelHelp) + ", or a vocabulary file")->required();
  sub->add_option("TEXT", o->text, "Text to tokenize")->required();
  sub->add_flag("--no-special", o->no_special, "Do not add BOS/EOS as the vocabulary asks");
  sub->add_flag("--no-parse-special", o->no_parse_special, "Treat special-token texts like <|im_start|> as plain text");
  return {sub, [o] {
            auto file = GgufFile::open(resolve_model_arg(o->model).path);
            auto tok = Tokenizer::from_gguf(*file);
            const auto ids = tok->encode(o->text, !o->no_special, !o->no_parse_special);
            std::printf("%s\n", ids_to_json(ids).c_str());
          }};
}

}  // namespace swapmoe::cli
