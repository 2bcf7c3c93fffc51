// `swapmoe tokenize MODEL TEXT`: prints the token ids of TEXT as a JSON array. Only the
// vocabulary is read (the GGUF header), never the weights, so it is instant on any file.
// `swapmoe tokenize MODEL --inp FILE` tokenizes every string of a llama.cpp vocab test file
// (strings each followed by "\n__ggml_vocab_test__\n") and prints one line of ids per string
// in the format of the .out files, so a test of hundreds of strings loads the vocabulary once.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string_view>

#include "cli/commands.h"
#include "cli/common_options.h"
#include "cli/json_out.h"
#include "gguf/gguf.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/text_file.h"

namespace swapmoe::cli {

namespace {

// Prints " id id ..." per string (the .out format: each id preceded by a space).
void print_inp_ids(const Tokenizer& tok, const std::string& content, bool add_special, bool parse_special) {
  constexpr std::string_view kSep = "\n__ggml_vocab_test__\n";
  size_t pos = 0;
  while (pos < content.size()) {
    const size_t end = content.find(kSep, pos);
    if (end == std::string::npos) throw Error("tokenize --inp: text after the last separator line");
    std::string line;
    for (int32_t id : tok.encode(content.substr(pos, end - pos), add_special, parse_special))
      line += " " + std::to_string(id);
    std::printf("%s\n", line.c_str());
    pos = end + kSep.size();
  }
}

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string inp;
  bool eog = false;
  bool no_special = false;
  bool no_parse_special = false;
};
}  // namespace

Command add_tokenize_command(CLI::App& app) {
  auto o = std::make_shared<TokenizeOptions>();
  CLI::App* sub = app.add_subcommand("tokenize", "Print the token ids of a text as a JSON array (reads only the vocabulary)");
  sub->add_option("MODEL", o->model, std::string(kModelHelp) + ", or a vocabulary file")->required();
  auto* text = sub->add_option("TEXT", o->text, "Text to tokenize");
  sub->add_option("--inp", o->inp, "Tokenize each string of a __ggml_vocab_test__ file; one line of ids per string")
      ->excludes(text);
  sub->add_flag("--eog", o->eog, "Print the end-of-generation ids as JSON")
      ->excludes(text);
  sub->add_flag("--no-special", o->no_special, "Do not add BOS/EOS as the vocabulary asks");
  sub->add_flag("--no-parse-special", o->no_parse_special, "Treat special-token texts like <|im_start|> as plain text");
  return {sub, [o, text] {
            auto file = GgufFile::open(resolve_model_arg(o->model).path);
            auto tok = Tokenizer::from_gguf(*file);
            if (!o->inp.empty()) {
              print_inp_ids(*tok, read_whole_file(o->inp, "the --inp file"), !o->no_special, !o->no_parse_special);
              return;
            }
            if (o->eog) {
              // {"eog": [...], "eos": id}: what generation stops at (conformance compares it
              // with llama.cpp's, e.g. gpt-oss's <|return|>/<|call|> but not <|end|>).
              std::vector<int32_t> eog;
              for (int32_t id = 0; id < tok->n_vocab(); ++id)
                if (tok->is_eog(id)) eog.push_back(id);
              std::printf("{\"eog\":%s,\"eos\":%d}\n", ids_to_json(eog).c_str(), tok->eos());
              return;
            }
            if (text->count() == 0) throw Error("tokenize: give TEXT, --inp FILE or --eog");
            const auto ids = tok->encode(o->text, !o->no_special, !o->no_parse_special);
            std::printf("%s\n", ids_to_json(ids).c_str());
          }};
}

}  // namespace swapmoe::cli
