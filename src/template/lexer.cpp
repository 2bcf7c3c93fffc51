// Lexer. Whitespace handling follows Jinja2 3.x with trim_blocks=True, lstrip_blocks=True:
//  - `{%-`/`{{-`/`{#-` strip all whitespace before the tag, `-%}`/`-}}`/`-#}` all after it;
//  - lstrip_blocks: spaces/tabs between the start of a line and `{%` or `{#` are dropped
//    (not before `{{`), unless the tag opens with `{%+`;
//  - trim_blocks: the first newline right after `%}` or `#}` is dropped;
//  - one trailing newline of the template is dropped (keep_trailing_newline=False), and
//    \r\n / \r line ends become \n, as Jinja does before lexing.

#include "template/lexer.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "template/template.h"

namespace swapmoe::tmpl {
namespace {

class Lexer {
 public:
  explicit Lexer(std::string src) : s_(std::move(src)) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < s_.size(); ++i)
      if (s_[i] == '\n') line_starts_.push_back(i + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    while (pos < s_.size()) {
      size_t tag = find_tag(pos);
      std::string text = s_.substr(pos, tag - pos);
      if (tag == s_.size()) {
        emit_text(text, pos);
        break;
      }
      char type = s_[tag + 1];  // '{', '%' or '#'
      char mod = tag + 2 < s_.size() ? s_[tag + 2] : '\0';
      if (mod == '-') {
        while (!text.empty() && std::isspace((unsigned char)text.back())) text.pop_back();
      } else if (mod != '+' && type != '{') {
        // lstrip_blocks: drop the indentation before a block or comment tag.
        size_t nl = text.rfind('\n');
        size_t l = nl == std::string::npos ? 0 : nl + 1;
        bool line_start = nl != std::string::npos || pos == 0 || s_[pos - 1] == '\n';
        if (line_start && l < text.size() &&
            std::all_of(text.begin() + l, text.end(), [](char c) { return c == ' ' || c == '\t'; }))
          text.resize(l);
      }
      emit_text(text, pos);
      size_t p = tag + 2 + ((mod == '-' || mod == '+') ? 1 : 0);
      if (type == '#') {
        size_t end = s_.find("#}", p);
        if (end == std::string::npos) error(tag, "unclosed comment");
        bool strip = end > p && s_[end - 1] == '-';
        pos = after_tag(end + 2, strip, true);
        continue;
      }
      pos = lex_tag(tag, p, type == '{');
    }
    Token eof;
    eof.kind = Tok::Eof;
    set_pos(eof, s_.size());
    out_.push_back(eof);
    return std::move(out_);
  }

 private:
  std::string s_;
  std::vector<size_t> line_starts_;
  std::vector<Token> out_;

  [[noreturn]] void error(size_t at, const std::string& msg) {
    int line, col;
    position(at, &line, &col);
    throw TemplateError(msg, line, col);
  }

  void position(size_t at, int* line, int* col) const {
    auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), at);
    size_t idx = size_t(it - line_starts_.begin()) - 1;
    *line = int(idx) + 1;
    *col = int(at - line_starts_[idx]) + 1;
  }

  void set_pos(Token& t, size_t at) const { position(at, &t.line, &t.col); }

  size_t find_tag(size_t pos) const {
    while (true) {
      size_t k = s_.find('{', pos);
      if (k == std::string::npos || k + 1 >= s_.size()) return s_.size();
      char c = s_[k + 1];
      if (c == '{' || c == '%' || c == '#') return k;
      pos = k + 1;
    }
  }

  void emit_text(const std::string& text, size_t at) {
    if (text.empty()) return;
    Token t;
    t.kind = Tok::Text;
    t.text = text;
    set_pos(t, at);
    out_.push_back(std::move(t));
  }

  // Position after a tag's closing delimiter: `-` eats all following whitespace, a block or
  // comment end eats one newline (trim_blocks).
  size_t after_tag(size_t p, bool strip, bool block) const {
    if (strip) {
      while (p < s_.size() && std::isspace((unsigned char)s_[p])) ++p;
    } else if (block && p < s_.size() && s_[p] == '\n') {
      ++p;
    }
    return p;
  }

  // Lexes the expression tokens of a {{ }} or {% %} tag starting after its opener; returns the
  // position after the tag (and after a whole raw block).
  size_t lex_tag(size_t tag, size_t p, bool is_var) {
    Token open;
    open.kind = is_var ? Tok::VarBegin : Tok::BlockBegin;
    set_pos(open, tag);
    size_t first = out_.size();
    out_.push_back(open);
    int depth = 0;
    while (true) {
      while (p < s_.size() && std::isspace((unsigned char)s_[p])) ++p;
      if (p >= s_.size()) error(tag, is_var ? "unclosed '{{'" : "unclosed '{%'");
      const char* close = is_var ? "}}" : "%}";
      if (depth == 0) {
        bool dash = s_[p] == '-' && s_.compare(p + 1, 2, close) == 0;
        if (dash || s_.compare(p, 2, close) == 0) {
          Token end;
          end.kind = is_var ? Tok::VarEnd : Tok::BlockEnd;
          set_pos(end, p);
          out_.push_back(end);
          size_t after = after_tag(p + (dash ? 3 : 2), dash, !is_var);
          if (!is_var && out_.size() == first + 3 && out_[first + 1].kind == Tok::Name &&
              out_[first + 1].text == "raw")
            return lex_raw(first, after);
          return after;
        }
      }
      Token t;
      set_pos(t, p);
      char c = s_[p];
      if (c == '\'' || c == '"') {
        t.kind = Tok::String;
        p = lex_string(p, &t.text);
      } else if (std::isdigit((unsigned char)c)) {
        size_t q = p;
        while (q < s_.size() && (std::isdigit((unsigned char)s_[q]) || s_[q] == '_')) ++q;
        bool is_float = false;
        if (q + 1 < s_.size() && s_[q] == '.' && std::isdigit((unsigned char)s_[q + 1])) {
          is_float = true;
          ++q;
          while (q < s_.size() && (std::isdigit((unsigned char)s_[q]) || s_[q] == '_')) ++q;
        }
        if (q < s_.size() && (s_[q] == 'e' || s_[q] == 'E')) {
          size_t r = q + 1;
          if (r < s_.size() && (s_[r] == '+' || s_[r] == '-')) ++r;
          if (r < s_.size() && std::isdigit((unsigned char)s_[r])) {
            is_float = true;
            q = r;
            while (q < s_.size() && std::isdigit((unsigned char)s_[q])) ++q;
          }
        }
        std::string num;
        for (size_t k = p; k < q; ++k)
          if (s_[k] != '_') num += s_[k];
        if (is_float) {
          t.kind = Tok::Float;
          t.fval = std::strtod(num.c_str(), nullptr);
        } else {
          t.kind = Tok::Int;
          errno = 0;
          char* endp = nullptr;
          long long v = std::strtoll(num.c_str(), &endp, 10);
          if (errno == ERANGE) error(p, "integer literal too large");
          t.ival = v;
        }
        t.text = num;
        p = q;
      } else if (std::isalpha((unsigned char)c) || c == '_') {
        size_t q = p;
        while (q < s_.size() && (std::isalnum((unsigned char)s_[q]) || s_[q] == '_')) ++q;
        t.kind = Tok::Name;
        t.text = s_.substr(p, q - p);
        p = q;
      } else {
        static const char* two[] = {"//", "**", "==", "!=", "<=", ">="};
        t.kind = Tok::Op;
        for (const char* op : two)
          if (s_.compare(p, 2, op) == 0) t.text = op;
        if (t.text.empty()) {
          if (std::string("+-*/%~<>=()[]{}.,:|").find(c) == std::string::npos)
            error(p, std::string("unexpected character '") + c + "'");
          t.text = std::string(1, c);
          if (c == '(' || c == '[' || c == '{') ++depth;
          if ((c == ')' || c == ']' || c == '}') && depth > 0) --depth;
        }
        p += t.text.size();
      }
      out_.push_back(std::move(t));
    }
  }

  // Python-style string literal; returns the position after the closing quote.
  size_t lex_string(size_t p, std::string* out) {
    char q = s_[p];
    size_t start = p++;
    while (true) {
      if (p >= s_.size()) error(start, "unterminated string literal");
      char c = s_[p];
      if (c == q) return p + 1;
      if (c != '\\') {
        *out += c;
        ++p;
        continue;
      }
      if (p + 1 >= s_.size()) error(start, "unterminated string literal");
      char e = s_[p + 1];
      p += 2;
      switch (e) {
        case 'n': *out += '\n'; break;
        case 't': *out += '\t'; break;
        case 'r': *out += '\r'; break;
        case 'b': *out += '\b'; break;
        case 'f': *out += '\f'; break;
        case 'v': *out += '\v'; break;
        case 'a': *out += '\a'; break;
        case '0': *out += '\0'; break;
        case '\\': *out += '\\'; break;
        case '\'': *out += '\''; break;
        case '"': *out += '"'; break;
        case '\n': break;  // line continuation
        case 'x':
        case 'u':
        case 'U': {
          size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (p + n > s_.size()) error(start, "truncated escape in string literal");
          uint32_t cp = 0;
          for (size_t k = 0; k < n; ++k) {
            char h = s_[p + k];
            if (!std::isxdigit((unsigned char)h)) error(p, "bad escape in string literal");
            cp = cp * 16 + uint32_t(std::isdigit((unsigned char)h) ? h - '0'
                                                                   : (std::tolower(h) - 'a' + 10));
          }
          if (cp > 0x10FFFF) error(p, "escape out of Unicode range");
          p += n;
          append_utf8(out, cp);
          break;
        }
        default:
          // Python keeps unknown escapes verbatim.
          *out += '\\';
          *out += e;
      }
    }
  }

  static void append_utf8(std::string* out, uint32_t cp) {
    if (cp < 0x80) {
      *out += char(cp);
    } else if (cp < 0x800) {
      *out += char(0xC0 | (cp >> 6));
      *out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *out += char(0xE0 | (cp >> 12));
      *out += char(0x80 | ((cp >> 6) & 0x3F));
      *out += char(0x80 | (cp & 0x3F));
    } else {
      *out += char(0xF0 | (cp >> 18));
      *out += char(0x80 | ((cp >> 12) & 0x3F));
      *out += char(0x80 | ((cp >> 6) & 0x3F));
      *out += char(0x80 | (cp & 0x3F));
    }
  }

  // After `{% raw %}`: everything up to `{% endraw %}` is text. The raw tokens are replaced
  // by one Text token.
  size_t lex_raw(size_t first, size_t p) {
    int line = out_[first].line, col = out_[first].col;
    out_.resize(first);
    size_t search = p;
    while (true) {
      size_t k = s_.find("{%", search);
      if (k == std::string::npos) {
        position(p, &line, &col);
        throw TemplateError("unclosed '{% raw %}' (no '{% endraw %}')", line, col);
      }
      size_t q = k + 2;
      bool lstrip = true, strip_before = false;
      if (q < s_.size() && (s_[q] == '-' || s_[q] == '+')) {
        strip_before = s_[q] == '-';
        lstrip = false;
        ++q;
      }
      while (q < s_.size() && std::isspace((unsigned char)s_[q])) ++q;
      if (s_.compare(q, 6, "endraw") != 0) {
        search = k + 2;
        continue;
      }
      q += 6;
      while (q < s_.size() && std::isspace((unsigned char)s_[q])) ++q;
      bool dash = q < s_.size() && s_[q] == '-';
      if (dash) ++q;
      if (s_.compare(q, 2, "%}") != 0) {
        search = k + 2;
        continue;
      }
      std::string text = s_.substr(p, k - p);
      if (strip_before) {
        while (!text.empty() && std::isspace((unsigned char)text.back())) text.pop_back();
      } else if (lstrip) {
        size_t nl = text.rfind('\n');
        size_t l = nl == std::string::npos ? 0 : nl + 1;
        if ((nl != std::string::npos || s_[p - 1] == '\n') && l < text.size() &&
            std::all_of(text.begin() + l, text.end(), [](char c) { return c == ' ' || c == '\t'; }))
          text.resize(l);
      }
      if (!text.empty()) {
        Token t;
        t.kind = Tok::Text;
        t.text = text;
        t.line = line;
        t.col = col;
        out_.push_back(std::move(t));
      }
      return after_tag(q + 2, dash, true);
    }
  }
};

std::string normalize(const std::string& src) {
  std::string s;
  s.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      s += '\n';
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      s += src[i];
    }
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

}  // namespace

std::vector<Token> lex(const std::string& source) { return Lexer(normalize(source)).run(); }

}  // namespace swapmoe::tmpl
