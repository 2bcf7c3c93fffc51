#pragma once
// The renderer's internals, shared by render.cpp (statements, expressions, builtins) and
// filters.cpp (filters, tests, str/list/dict methods).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "template/ast.h"
#include "template/template.h"
#include "template/value.h"

namespace swapmoe::tmpl {

// Variables of one scope (template top level, one for loop, one macro call). Lookups walk
// the parent chain; assignments go to the innermost scope, as Jinja's {% set %} does.
struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
  const Value* lookup(const std::string& name) const {
    for (const Scope* s = this; s; s = s->parent.get()) {
      auto it = s->vars.find(name);
      if (it != s->vars.end()) return &it->second;
    }
    return nullptr;
  }
};
using ScopeP = std::shared_ptr<Scope>;

// Errors thrown by value operations without a position; the interpreter rethrows them as
// TemplateError at the expression being evaluated.
struct OpError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Interp {
 public:
  explicit Interp(const RenderOptions& opts) : opts_(opts) {}
  std::string run(const Program& prog, const Value& context);

  Value eval(const Expr& e, const ScopeP& scope);
  // Calls a callable value (macro, builtin, bound method) with evaluated arguments.
  Value call(const Value& fn, const CallArgs& args, const Expr& at);
  // Counts work so that a template cannot run forever (loops, recursion).
  void tick(const Expr* at = nullptr);
  const RenderOptions& options() const { return opts_; }
  // Runs a macro body with its parameters bound; `def` is the scope the macro was defined in.
  Value invoke_macro(const Stmt& m, const ScopeP& def, const CallArgs& args);
  // Renders a {% call %} block body for caller(...).
  Value invoke_caller(const Stmt& c, const ScopeP& def, const CallArgs& args);

 private:
  enum class Flow { Normal, Break, Continue };
  Flow exec(const Body& body, const ScopeP& scope, std::string& out);
  Flow exec_stmt(const Stmt& s, const ScopeP& scope, std::string& out);
  void exec_for(const Stmt& s, const ScopeP& scope, std::string& out);
  void exec_set(const Stmt& s, const ScopeP& scope);
  Value make_macro(const Stmt& s, const ScopeP& scope);
  Value eval_binary(const Expr& e, const Value& a, const Value& b);
  Value eval_compare(const Expr& e, const ScopeP& scope);
  void append(std::string& out, const std::string& s, const Stmt& at);
  // Applies a {% filter %} / {% set x | f %} chain to v: `top` is the last filter, each
  // filter's `a` the one before it, so they run from the innermost outwards.
  Value apply_filter_chain(const Expr* top, Value v, const ScopeP& scope);
  [[noreturn]] void fail_at(int line, int col, const std::string& msg);

  RenderOptions opts_;
  ScopeP globals_;
  uint64_t steps_ = 0;
  int call_depth_ = 0;
  int eval_depth_ = 0;
  size_t total_out_ = 0;
};

// filters.cpp
Value apply_filter(Interp& in, const std::string& name, const Value& v, const CallArgs& args);
bool has_filter(const std::string& name);
bool apply_test(Interp& in, const std::string& name, const Value& v, const CallArgs& args);
bool has_test(const std::string& name);
// obj.name: dict keys, or a bound method of str/list/dict (Python's getattr order).
Value get_attr(const Value& obj, const std::string& name);
// obj[key]: list/str index, dict key; falls back to get_attr like Jinja's subscript.
Value get_item(const Value& obj, const Value& key);
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
bool contains(const Value& container, const Value& item);
// Items a for loop visits: list items, dict keys, string characters.
Array iterate(const Value& v);
// Python's `fmt % args` for %s %r %d %i %f %% (the `format` filter and the % operator).
std::string percent_format(const std::string& fmt, const Array& args);

// Limits that keep rendering bounded on hostile templates (steps and output size are in
// RenderOptions, the size of single strings in value.h). kMaxRange caps range() and list
// repetition.
constexpr int64_t kMaxRange = 1'000'000;
constexpr int kMaxCallDepth = 100;
constexpr int kMaxEvalDepth = 500;  // expression + statement nesting, macros included

}  // namespace swapmoe::tmpl
