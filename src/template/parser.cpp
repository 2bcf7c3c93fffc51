// Recursive-descent parser for the Jinja2 statement and expression grammar. Operator
// precedence follows Jinja2's parser (lowest first):
//   x if c else y | or | and | not | comparisons, in, not in | + - | ~ | * / // % | ** |
//   unary - + | primary with postfix .attr [sub] (call), then filters `|f` and tests `is t`
// so `'a' + x | tojson` is 'a' + (x | tojson) and `not x is defined` is not (x is defined).

#include <set>

#include "template/ast.h"
#include "template/lexer.h"
#include "template/template.h"

namespace swapmoe::tmpl {
namespace {

constexpr int kMaxDepth = 200;

class Parser {
 public:
  explicit Parser(std::vector<Token> toks) : t_(std::move(toks)) {}

  Body parse_all() {
    std::string stop;
    Body body = parse_body({}, &stop, nullptr);
    return body;
  }

 private:
  std::vector<Token> t_;
  size_t i_ = 0;
  int depth_ = 0;

  const Token& cur() const { return t_[i_]; }
  const Token& peek(size_t k = 1) const { return t_[std::min(i_ + k, t_.size() - 1)]; }
  void advance() {
    if (i_ + 1 < t_.size()) ++i_;
  }

  [[noreturn]] void error_at(const Token& t, const std::string& msg) const {
    throw TemplateError(msg, t.line, t.col);
  }
  [[noreturn]] void unexpected(const std::string& expected) const {
    const Token& t = cur();
    std::string got;
    switch (t.kind) {
      case Tok::Eof: got = "end of template"; break;
      case Tok::VarEnd: got = "'}}'"; break;
      case Tok::BlockEnd: got = "'%}'"; break;
      case Tok::Text: got = "text"; break;
      case Tok::String: got = "string literal"; break;
      default: got = "'" + t.text + "'";
    }
    error_at(t, "expected " + expected + ", got " + got);
  }

  bool is_op(const char* op) const { return cur().kind == Tok::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().kind == Tok::Name && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    advance();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) unexpected(std::string("'") + op + "'");
  }
  std::string expect_name() {
    if (cur().kind != Tok::Name) unexpected("a name");
    std::string n = cur().text;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().kind != Tok::BlockEnd) unexpected("'%}'");
    advance();
  }

  template <class N>
  std::unique_ptr<N> node_at(const Token& t) {
    auto n = std::make_unique<N>();
    n->line = t.line;
    n->col = t.col;
    return n;
  }
  ExprP expr_node(EK k, const Token& t) {
    auto e = node_at<Expr>(t);
    e->kind = k;
    return e;
  }

  struct DepthGuard {
    Parser* p;
    explicit DepthGuard(Parser* pp) : p(pp) {
      if (++p->depth_ > kMaxDepth) p->error_at(p->cur(), "template nested too deeply");
    }
    ~DepthGuard() { --p->depth_; }
  };

  // ---- statements -------------------------------------------------------------------

  // Parses statements until a block tag whose name is in `stops` (returned in *stop, the
  // cursor left after the name) or the end of input (allowed only when `stops` is empty;
  // `opener` names the unclosed tag for the error message).
  Body parse_body(const std::set<std::string>& stops, std::string* stop, const Token* opener) {
    DepthGuard g(this);
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.kind == Tok::Eof) {
        if (stops.empty()) return body;
        std::string names;
        for (const auto& s : stops) names += (names.empty() ? "'" : " or '") + s + "'";
        error_at(opener ? *opener : t, "unclosed block: expected " + names + " before end of template");
      }
      if (t.kind == Tok::Text) {
        auto s = node_at<Stmt>(t);
        s->kind = SK::Text;
        s->text = t.text;
        body.push_back(std::move(s));
        advance();
      } else if (t.kind == Tok::VarBegin) {
        auto s = node_at<Stmt>(t);
        s->kind = SK::Output;
        advance();
        s->expr = parse_tuple_expr();
        if (cur().kind != Tok::VarEnd) unexpected("'}}'");
        advance();
        body.push_back(std::move(s));
      } else if (t.kind == Tok::BlockBegin) {
        const Token& name_tok = peek();
        if (name_tok.kind != Tok::Name) {
          advance();
          unexpected("a statement name");
        }
        if (stops.count(name_tok.text)) {
          *stop = name_tok.text;
          advance();
          advance();
          return body;
        }
        parse_statement(body);
      } else {
        unexpected("text or a tag");
      }
    }
  }

  void parse_statement(Body& body) {
    const Token open = cur();
    advance();
    const Token name_tok = cur();
    std::string name = name_tok.text;
    advance();
    auto s = node_at<Stmt>(open);
    std::string stop;
    if (name == "if") {
      s->kind = SK::If;
      s->conds.push_back(parse_expression());
      expect_block_end();
      while (true) {
        s->bodies.push_back(parse_body({"elif", "else", "endif"}, &stop, &open));
        if (stop == "elif") {
          s->conds.push_back(parse_expression());
          expect_block_end();
        } else if (stop == "else") {
          expect_block_end();
          s->else_body = parse_body({"endif"}, &stop, &open);
          expect_block_end();
          break;
        } else {
          expect_block_end();
          break;
        }
      }
    } else if (name == "for") {
      s->kind = SK::For;
      bool paren = skip_op("(");
      s->targets.push_back(expect_name());
      while (skip_op(",")) {
        if (is_name("in")) break;
        s->targets.push_back(expect_name());
      }
      if (paren) expect_op(")");
      if (!skip_name("in")) unexpected("'in'");
      s->expr = parse_tuple_expr(false);
      if (skip_name("if")) s->cond = parse_expression();
      if (skip_name("recursive")) error_at(name_tok, "recursive for loops are not supported");
      expect_block_end();
      s->body = parse_body({"else", "endfor"}, &stop, &open);
      if (stop == "else") {
        expect_block_end();
        s->else_body = parse_body({"endfor"}, &stop, &open);
      }
      expect_block_end();
    } else if (name == "set") {
      s->targets.push_back(expect_name());
      if (skip_op(".")) {
        s->text = expect_name();
      } else {
        while (skip_op(",")) s->targets.push_back(expect_name());
      }
      if (skip_op("=")) {
        s->kind = SK::Set;
        s->expr = parse_tuple_expr();
        expect_block_end();
      } else {
        if (s->targets.size() != 1 || !s->text.empty()) unexpected("'='");
        s->kind = SK::SetBlock;
        if (cur().kind == Tok::Op && cur().text == "|") {
          // {% set x | filter %}...{% endset %}: the filters apply to the captured body.
          advance();
          s->expr = parse_filter_chain(nullptr, open);
        }
        expect_block_end();
        s->body = parse_body({"endset"}, &stop, &open);
        expect_block_end();
      }
    } else if (name == "macro") {
      s->kind = SK::Macro;
      s->text = expect_name();
      parse_params(s->params);
      expect_block_end();
      s->body = parse_body({"endmacro"}, &stop, &open);
      if (cur().kind == Tok::Name) advance();  // {% endmacro name %}
      expect_block_end();
    } else if (name == "call") {
      s->kind = SK::CallBlock;
      if (is_op("(")) parse_params(s->params);
      s->expr = parse_expression();
      if (s->expr->kind != EK::Call) error_at(name_tok, "{% call %} needs a macro call");
      expect_block_end();
      s->body = parse_body({"endcall"}, &stop, &open);
      expect_block_end();
    } else if (name == "filter") {
      s->kind = SK::FilterBlock;
      s->expr = parse_filter_chain(nullptr, open);
      expect_block_end();
      s->body = parse_body({"endfilter"}, &stop, &open);
      expect_block_end();
    } else if (name == "break" || name == "continue") {
      s->kind = name == "break" ? SK::Break : SK::Continue;
      expect_block_end();
    } else if (name == "generation") {
      // transformers' {% generation %} marks assistant text for training masks; the text
      // itself renders unchanged.
      expect_block_end();
      Body inner = parse_body({"endgeneration"}, &stop, &open);
      expect_block_end();
      for (auto& st : inner) body.push_back(std::move(st));
      return;
    } else {
      error_at(name_tok, "unknown or unexpected tag '" + name + "'");
    }
    body.push_back(std::move(s));
  }

  void parse_params(std::vector<std::pair<std::string, ExprP>>& params) {
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      std::string p = expect_name();
      ExprP def;
      if (skip_op("=")) def = parse_expression();
      params.emplace_back(p, std::move(def));
    }
    advance();
  }

  // ---- expressions ------------------------------------------------------------------

  // An expression that may be a bare tuple (`{{ a, b }}`, `for x in a, b`).
  ExprP parse_tuple_expr(bool with_cond = true) {
    const Token start = cur();
    ExprP first = with_cond ? parse_expression() : parse_or();
    if (!is_op(",")) return first;
    auto tup = expr_node(EK::Tuple, start);
    tup->items.push_back(std::move(first));
    while (skip_op(",")) {
      if (cur().kind == Tok::BlockEnd || cur().kind == Tok::VarEnd || is_name("if")) break;
      tup->items.push_back(with_cond ? parse_expression() : parse_or());
    }
    return tup;
  }

  ExprP parse_expression() {
    DepthGuard g(this);
    const Token start = cur();
    ExprP e = parse_or();
    while (skip_name("if")) {
      auto c = expr_node(EK::Cond, start);
      c->b = std::move(e);
      c->a = parse_or();
      if (skip_name("else")) c->c = parse_expression();
      e = std::move(c);
    }
    return e;
  }

  ExprP parse_or() {
    ExprP e = parse_and();
    while (is_name("or")) {
      auto n = expr_node(EK::Or, cur());
      advance();
      n->a = std::move(e);
      n->b = parse_and();
      e = std::move(n);
    }
    return e;
  }

  ExprP parse_and() {
    ExprP e = parse_not();
    while (is_name("and")) {
      auto n = expr_node(EK::And, cur());
      advance();
      n->a = std::move(e);
      n->b = parse_not();
      e = std::move(n);
    }
    return e;
  }

  ExprP parse_not() {
    if (is_name("not")) {
      DepthGuard g(this);
      auto n = expr_node(EK::Not, cur());
      advance();
      n->a = parse_not();
      return n;
    }
    return parse_compare();
  }

  ExprP parse_compare() {
    const Token start = cur();
    ExprP e = parse_math1();
    ExprP cmp;
    while (true) {
      std::string op;
      if (cur().kind == Tok::Op &&
          (cur().text == "==" || cur().text == "!=" || cur().text == "<" || cur().text == "<=" ||
           cur().text == ">" || cur().text == ">=")) {
        op = cur().text;
        advance();
      } else if (is_name("in")) {
        op = "in";
        advance();
      } else if (is_name("not") && peek().kind == Tok::Name && peek().text == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        break;
      }
      if (!cmp) {
        cmp = expr_node(EK::Compare, start);
        cmp->a = std::move(e);
      }
      cmp->names.push_back(op);
      cmp->items.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(e);
  }

  ExprP binary(const char* op, const Token& at, ExprP l, ExprP r) {
    auto n = expr_node(EK::Binary, at);
    n->name = op;
    n->a = std::move(l);
    n->b = std::move(r);
    return n;
  }

  ExprP parse_math1() {
    ExprP e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token op = cur();
      advance();
      e = binary(op.text.c_str(), op, std::move(e), parse_concat());
    }
    return e;
  }

  ExprP parse_concat() {
    ExprP e = parse_math2();
    while (is_op("~")) {
      const Token op = cur();
      advance();
      e = binary("~", op, std::move(e), parse_math2());
    }
    return e;
  }

  ExprP parse_math2() {
    ExprP e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token op = cur();
      advance();
      e = binary(op.text.c_str(), op, std::move(e), parse_pow());
    }
    return e;
  }

  ExprP parse_pow() {
    ExprP e = parse_unary(true);
    while (is_op("**")) {
      const Token op = cur();
      advance();
      e = binary("**", op, std::move(e), parse_unary(true));
    }
    return e;
  }

  ExprP parse_unary(bool with_filter) {
    DepthGuard g(this);
    ExprP e;
    if (is_op("-") || is_op("+")) {
      auto n = expr_node(is_op("-") ? EK::Neg : EK::Pos, cur());
      advance();
      n->a = parse_unary(false);
      e = std::move(n);
    } else {
      e = parse_postfix(parse_primary());
    }
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprP parse_primary() {
    DepthGuard g(this);
    const Token t = cur();
    switch (t.kind) {
      case Tok::Name: {
        advance();
        auto lit = [&](Value v) {
          auto e = expr_node(EK::Literal, t);
          e->value = std::move(v);
          return e;
        };
        if (t.text == "true" || t.text == "True") return lit(Value(true));
        if (t.text == "false" || t.text == "False") return lit(Value(false));
        if (t.text == "none" || t.text == "None") return lit(Value(nullptr));
        auto e = expr_node(EK::Name, t);
        e->name = t.text;
        return e;
      }
      case Tok::String: {
        std::string s;
        while (cur().kind == Tok::String) {  // adjacent literals concatenate, as in Python
          s += cur().text;
          advance();
        }
        auto e = expr_node(EK::Literal, t);
        e->value = Value(std::move(s));
        return e;
      }
      case Tok::Int: {
        advance();
        auto e = expr_node(EK::Literal, t);
        e->value = Value(t.ival);
        return e;
      }
      case Tok::Float: {
        advance();
        auto e = expr_node(EK::Literal, t);
        e->value = Value(t.fval);
        return e;
      }
      case Tok::Op:
        if (t.text == "(") {
          advance();
          if (skip_op(")")) return expr_node(EK::Tuple, t);
          ExprP first = parse_expression();
          if (skip_op(")")) return first;
          auto tup = expr_node(EK::Tuple, t);
          tup->items.push_back(std::move(first));
          while (skip_op(",")) {
            if (is_op(")")) break;
            tup->items.push_back(parse_expression());
          }
          expect_op(")");
          return tup;
        }
        if (t.text == "[") {
          advance();
          auto l = expr_node(EK::List, t);
          while (!is_op("]")) {
            if (!l->items.empty()) expect_op(",");
            if (is_op("]")) break;
            l->items.push_back(parse_expression());
          }
          advance();
          return l;
        }
        if (t.text == "{") {
          advance();
          auto d = expr_node(EK::Dict, t);
          while (!is_op("}")) {
            if (!d->items.empty()) expect_op(",");
            if (is_op("}")) break;
            d->items.push_back(parse_expression());
            expect_op(":");
            d->items.push_back(parse_expression());
          }
          advance();
          return d;
        }
        break;
      default: break;
    }
    unexpected("an expression");
  }

  ExprP parse_postfix(ExprP e) {
    while (true) {
      const Token t = cur();
      if (skip_op(".")) {
        if (cur().kind == Tok::Int) {
          auto n = expr_node(EK::Index, t);
          n->a = std::move(e);
          n->b = expr_node(EK::Literal, cur());
          n->b->value = Value(cur().ival);
          advance();
          e = std::move(n);
          continue;
        }
        auto n = expr_node(EK::Attr, t);
        n->a = std::move(e);
        n->name = expect_name();
        e = std::move(n);
      } else if (skip_op("[")) {
        e = parse_subscript(std::move(e), t);
      } else if (is_op("(")) {
        e = parse_call(std::move(e), t);
      } else {
        return e;
      }
    }
  }

  ExprP parse_subscript(ExprP obj, const Token& t) {
    ExprP parts[3];
    int colons = 0;
    while (true) {
      if (is_op("]")) break;
      if (skip_op(":")) {
        if (++colons > 2) unexpected("']'");
        continue;
      }
      if (parts[colons]) unexpected("':' or ']'");
      parts[colons] = parse_expression();
    }
    advance();
    if (colons == 0) {
      if (!parts[0]) error_at(t, "empty subscript");
      auto n = expr_node(EK::Index, t);
      n->a = std::move(obj);
      n->b = std::move(parts[0]);
      return n;
    }
    auto n = expr_node(EK::Slice, t);
    n->a = std::move(obj);
    n->b = std::move(parts[0]);
    n->c = std::move(parts[1]);
    n->d = std::move(parts[2]);
    return n;
  }

  void parse_args(Expr& n) {
    expect_op("(");
    bool first = true;
    while (!is_op(")")) {
      if (!first) expect_op(",");
      first = false;
      if (is_op(")")) break;
      if (cur().kind == Tok::Name && peek().kind == Tok::Op && peek().text == "=") {
        std::string k = cur().text;
        advance();
        advance();
        n.kwargs.emplace_back(k, parse_expression());
      } else {
        if (!n.kwargs.empty()) unexpected("a keyword argument");
        n.items.push_back(parse_expression());
      }
    }
    advance();
  }

  ExprP parse_call(ExprP callee, const Token& t) {
    auto n = expr_node(EK::Call, t);
    n->a = std::move(callee);
    parse_args(*n);
    return n;
  }

  // Filters after `|` (already consumed): name[(args)] | name[(args)] ...
  ExprP parse_filter_chain(ExprP e, const Token& at) {
    while (true) {
      const Token t = cur();
      auto f = expr_node(EK::Filter, t);
      f->name = expect_name();
      if (is_op("(")) parse_args(*f);
      f->a = std::move(e);
      e = std::move(f);
      if (!skip_op("|")) return e;
    }
  }

  ExprP parse_filter_expr(ExprP e) {
    while (true) {
      const Token t = cur();
      if (skip_op("|")) {
        auto f = expr_node(EK::Filter, cur());
        f->name = expect_name();
        if (is_op("(")) parse_args(*f);
        f->a = std::move(e);
        e = std::move(f);
      } else if (is_name("is")) {
        advance();
        auto n = expr_node(EK::Test, t);
        n->negated = skip_name("not");
        n->name = expect_name();
        n->a = std::move(e);
        if (is_op("(")) {
          parse_args(*n);
        } else if ((cur().kind == Tok::Name || cur().kind == Tok::String || cur().kind == Tok::Int ||
                    cur().kind == Tok::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and") && !is_name("if")) {
          if (is_name("is")) unexpected("a test argument");
          n->items.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(n);
      } else if (is_op("(")) {
        e = parse_call(std::move(e), t);
      } else {
        return e;
      }
    }
  }
};

}  // namespace

std::shared_ptr<const Program> parse_template(const std::string& source) {
  Parser p(lex(source));
  auto prog = std::make_shared<Program>();
  prog->body = p.parse_all();
  return prog;
}

}  // namespace swapmoe::tmpl
