#pragma once
// Template lexer: splits a template into text and tag tokens, applying Jinja's whitespace
// rules as transformers configures them (trim_blocks, lstrip_blocks, `-`/`+` modifiers,
// one trailing newline dropped), and tokenizes the expressions inside tags.

#include <cstdint>
#include <string>
#include <vector>

namespace swapmoe::tmpl {

enum class Tok {
  Text,        // literal output text
  VarBegin,    // {{
  VarEnd,      // }}
  BlockBegin,  // {%
  BlockEnd,    // %}
  Name,
  String,      // text holds the unescaped value
  Int,
  Float,
  Op,          // text holds the operator / punctuation
  Eof,
};

struct Token {
  Tok kind;
  std::string text;
  int64_t ival = 0;
  double fval = 0;
  int line = 0;
  int col = 0;
};

// Throws TemplateError on malformed input (unterminated tag, string or comment).
std::vector<Token> lex(const std::string& source);

}  // namespace swapmoe::tmpl
