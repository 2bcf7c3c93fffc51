// Interpreter: executes the statement tree and evaluates expressions with Python/Jinja
// semantics. Scoping follows Jinja: a for loop and a macro call open a scope ({% set %}
// inside them does not leak out, which is why templates use namespace()), if/else does not.

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>

#include "template/interp.h"

namespace swapmoe::tmpl {
namespace {

// raise_exception() unwinds through this until eval() of the call adds the position.
struct Raised {
  std::string message;
};

struct EvalDepth {
  int& d;
  EvalDepth(int& dd, Interp& in, const Expr& e) : d(dd) {
    if (++d > kMaxEvalDepth) {
      --d;
      throw TemplateError("expression or call nesting too deep", e.line, e.col);
    }
  }
  ~EvalDepth() { --d; }
};

int64_t to_int_checked(const Value& v) {
  if (v.is_bool()) return v.b() ? 1 : 0;
  if (v.is_int()) return v.i();
  throw OpError(std::string("expected an integer, got ") + type_name(v));
}

bool is_numeric(const Value& v) { return v.is_number() || v.is_bool(); }

Value make_builtin(const char* name, std::function<Value(const CallArgs&, Interp&)> fn) {
  auto c = std::make_shared<Callable>();
  c->name = name;
  c->fn = std::move(fn);
  return Value(c);
}

ScopeP make_globals() {
  auto g = std::make_shared<Scope>();
  g->vars["range"] = make_builtin("range", [](const CallArgs& a, Interp& in) {
    if (a.pos.empty() || a.pos.size() > 3) throw OpError("range() takes 1 to 3 arguments");
    int64_t start = 0, stop, step = 1;
    if (a.pos.size() == 1) {
      stop = to_int_checked(a.pos[0]);
    } else {
      start = to_int_checked(a.pos[0]);
      stop = to_int_checked(a.pos[1]);
      if (a.pos.size() == 3) step = to_int_checked(a.pos[2]);
    }
    if (step == 0) throw OpError("range() arg 3 must not be zero");
    // Length computed in double: no overflow for any int64 bounds.
    double len = std::ceil((double(stop) - double(start)) / double(step));
    if (len > double(kMaxRange)) throw OpError("range() too large");
    Array out;
    for (int64_t x = start; step > 0 ? x < stop : x > stop;) {
      in.tick();
      out.push_back(Value(x));
      if (__builtin_add_overflow(x, step, &x)) break;
    }
    return make_array(std::move(out));
  });
  auto dict_like = [](bool ns) {
    return [ns](const CallArgs& a, Interp&) {
      auto o = std::make_shared<Object>();
      o->is_namespace = ns;
      for (const auto& p : a.pos) {
        if (!p.is_object()) throw OpError("dict()/namespace() positional argument must be a mapping");
        for (const auto& kv : p.o()->items) o->set(kv.first, kv.second);
      }
      for (const auto& kv : a.kw) o->set(kv.first, kv.second);
      return Value(o);
    };
  };
  g->vars["dict"] = make_builtin("dict", dict_like(false));
  g->vars["namespace"] = make_builtin("namespace", dict_like(true));
  g->vars["raise_exception"] = make_builtin("raise_exception", [](const CallArgs& a, Interp&) -> Value {
    throw Raised{a.pos.empty() ? std::string() : to_str(a.pos[0])};
  });
  g->vars["strftime_now"] = make_builtin("strftime_now", [](const CallArgs& a, Interp& in) {
    if (a.pos.empty() || !a.pos[0].is_string()) throw OpError("strftime_now() needs a format string");
    const std::string& fmt = a.pos[0].s();
    if (fmt.size() > 256) throw OpError("strftime_now() format too long");
    std::tm tm{};
    if (in.options().now_unix) {
      std::time_t t = std::time_t(*in.options().now_unix);
      gmtime_r(&t, &tm);
    } else {
      std::time_t t = std::time(nullptr);
      localtime_r(&t, &tm);
    }
    char buf[2048];
    size_t n = fmt.empty() ? 0 : std::strftime(buf, sizeof buf, fmt.c_str(), &tm);
    return Value(std::string(buf, n));
  });
  return g;
}

}  // namespace

void Interp::tick(const Expr* at) {
  if (++steps_ > opts_.max_steps) {
    if (at) throw TemplateError("template runs too long (step limit)", at->line, at->col);
    throw OpError("template runs too long (step limit)");
  }
}

void Interp::fail_at(int line, int col, const std::string& msg) { throw TemplateError(msg, line, col); }

Value Interp::apply_filter_chain(const Expr* top, Value v, const ScopeP& scope) {
  std::vector<const Expr*> chain;
  for (const Expr* f = top; f; f = f->a.get()) chain.push_back(f);
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    CallArgs args;
    for (const auto& x : (*it)->items) args.pos.push_back(eval(*x, scope));
    for (const auto& kv : (*it)->kwargs) args.kw.emplace_back(kv.first, eval(*kv.second, scope));
    try {
      v = apply_filter(*this, (*it)->name, v, args);
    } catch (const TemplateError&) {
      throw;
    } catch (const std::exception& ex) {
      fail_at((*it)->line, (*it)->col, ex.what());
    }
  }
  return v;
}

void Interp::append(std::string& out, const std::string& s, const Stmt& at) {
  total_out_ += s.size();
  if (total_out_ > opts_.max_output_bytes) fail_at(at.line, at.col, "template output too large");
  out += s;
}

std::string Interp::run(const Program& prog, const Value& context) {
  struct LimitScope {
    size_t saved = tl_size_limit;
    ~LimitScope() { tl_size_limit = saved; }
  } limit_scope;
  tl_size_limit = std::min(kMaxString, opts_.max_output_bytes);
  globals_ = make_globals();
  auto root = std::make_shared<Scope>();
  root->parent = globals_;
  if (context.is_object())
    for (const auto& kv : context.o()->items) root->vars[kv.first] = kv.second;
  std::string out;
  exec(prog.body, root, out);
  return out;
}

Interp::Flow Interp::exec(const Body& body, const ScopeP& scope, std::string& out) {
  // Statement nesting shares the expression depth budget, so that recursion through macros
  // with deeply nested bodies cannot exhaust the C++ stack.
  if (!body.empty() && ++eval_depth_ > kMaxEvalDepth) {
    --eval_depth_;
    fail_at(body[0]->line, body[0]->col, "template nesting too deep");
  }
  struct Release {
    int& d;
    bool on;
    ~Release() {
      if (on) --d;
    }
  } release{eval_depth_, !body.empty()};
  for (const auto& s : body) {
    Flow f = exec_stmt(*s, scope, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Interp::Flow Interp::exec_stmt(const Stmt& s, const ScopeP& scope, std::string& out) {
  switch (s.kind) {
    case SK::Text: append(out, s.text, s); break;
    case SK::Output: append(out, to_str(eval(*s.expr, scope)), s); break;
    case SK::If:
      for (size_t k = 0; k < s.conds.size(); ++k)
        if (truthy(eval(*s.conds[k], scope))) return exec(s.bodies[k], scope, out);
      return exec(s.else_body, scope, out);
    case SK::For: exec_for(s, scope, out); break;
    case SK::Set: exec_set(s, scope); break;
    case SK::SetBlock: {
      std::string captured;
      exec(s.body, scope, captured);
      Value v(std::move(captured));
      if (s.expr) v = apply_filter_chain(s.expr.get(), std::move(v), scope);
      scope->vars[s.targets[0]] = std::move(v);
      break;
    }
    case SK::Macro: scope->vars[s.text] = make_macro(s, scope); break;
    case SK::CallBlock: {
      const Expr& callexpr = *s.expr;
      Value fn = eval(*callexpr.a, scope);
      CallArgs args;
      for (const auto& x : callexpr.items) args.pos.push_back(eval(*x, scope));
      for (const auto& kv : callexpr.kwargs) args.kw.emplace_back(kv.first, eval(*kv.second, scope));
      auto c = std::make_shared<Callable>();
      c->name = "caller";
      const Stmt* sp = &s;
      std::weak_ptr<Scope> def = scope;
      c->fn = [sp, def](const CallArgs& a, Interp& in) {
        ScopeP d = def.lock();
        if (!d) throw OpError("caller() used after its scope ended");
        return in.invoke_caller(*sp, d, a);
      };
      args.kw.emplace_back("caller", Value(c));
      append(out, to_str(call(fn, args, callexpr)), s);
      break;
    }
    case SK::FilterBlock: {
      std::string captured;
      exec(s.body, scope, captured);
      const Value v = apply_filter_chain(s.expr.get(), Value(std::move(captured)), scope);
      append(out, to_str(v), s);
      break;
    }
    case SK::Break: return Flow::Break;
    case SK::Continue: return Flow::Continue;
  }
  return Flow::Normal;
}

namespace {
void bind_targets(Scope& sc, const std::vector<std::string>& targets, const Value& item, const Stmt& s) {
  if (targets.size() == 1) {
    sc.vars[targets[0]] = item;
    return;
  }
  Array parts;
  if (item.is_array()) parts = *item.a();
  else if (item.is_string()) parts = iterate(item);
  if (parts.size() != targets.size())
    throw TemplateError("cannot unpack " + std::string(type_name(item)) + " into " +
                            std::to_string(targets.size()) + " names",
                        s.line, s.col);
  for (size_t k = 0; k < targets.size(); ++k) sc.vars[targets[k]] = parts[k];
}
}  // namespace

void Interp::exec_for(const Stmt& s, const ScopeP& scope, std::string& out) {
  Value it = eval(*s.expr, scope);
  if (!(it.is_undefined() || it.is_array() || it.is_object() || it.is_string()))
    fail_at(s.expr->line, s.expr->col, std::string("'") + type_name(it) + "' object is not iterable");
  Array items = iterate(it);
  auto ls = std::make_shared<Scope>();
  ls->parent = scope;
  if (s.cond) {
    Array kept;
    for (const auto& item : items) {
      tick(s.cond.get());
      bind_targets(*ls, s.targets, item, s);
      if (truthy(eval(*s.cond, ls))) kept.push_back(item);
    }
    items = std::move(kept);
    ls = std::make_shared<Scope>();
    ls->parent = scope;
  }
  if (items.empty()) {
    exec(s.else_body, scope, out);
    return;
  }
  const int64_t n = int64_t(items.size());
  for (int64_t k = 0; k < n; ++k) {
    tick(s.expr.get());
    bind_targets(*ls, s.targets, items[size_t(k)], s);
    auto loop = std::make_shared<Object>();
    loop->items = {
        {"index", Value(k + 1)},
        {"index0", Value(k)},
        {"revindex", Value(n - k)},
        {"revindex0", Value(n - k - 1)},
        {"first", Value(k == 0)},
        {"last", Value(k == n - 1)},
        {"length", Value(n)},
        {"depth", Value(1)},
        {"depth0", Value(0)},
        {"previtem", k > 0 ? items[size_t(k - 1)] : Value()},
        {"nextitem", k + 1 < n ? items[size_t(k + 1)] : Value()},
    };
    loop->items.emplace_back("cycle", make_builtin("cycle", [k](const CallArgs& a, Interp&) {
      if (a.pos.empty()) throw OpError("loop.cycle() needs at least one argument");
      return a.pos[size_t(k) % a.pos.size()];
    }));
    ls->vars["loop"] = Value(loop);
    Flow f = exec(s.body, ls, out);
    if (f == Flow::Break) break;
  }
}

void Interp::exec_set(const Stmt& s, const ScopeP& scope) {
  Value v = eval(*s.expr, scope);
  if (!s.text.empty()) {
    const Value* target = scope->lookup(s.targets[0]);
    if (!target || !target->is_object() || !target->o()->is_namespace)
      fail_at(s.line, s.col, "cannot assign attribute '" + s.text + "' on '" + s.targets[0] +
                                 "': only namespace() objects support attribute assignment");
    if (value_reaches(v, target->o().get()))
      fail_at(s.line, s.col, "cannot store a namespace inside itself");
    target->o()->set(s.text, std::move(v));
    return;
  }
  if (s.targets.size() == 1) {
    scope->vars[s.targets[0]] = std::move(v);
    return;
  }
  bind_targets(*scope, s.targets, v, s);
}

Value Interp::make_macro(const Stmt& s, const ScopeP& scope) {
  auto c = std::make_shared<Callable>();
  c->name = s.text;
  const Stmt* sp = &s;
  // A weak reference: the macro is stored in the scope it captures, and a strong one would
  // form a reference cycle (a leak).
  std::weak_ptr<Scope> def = scope;
  c->fn = [sp, def](const CallArgs& a, Interp& in) {
    ScopeP d = def.lock();
    if (!d) throw OpError("macro '" + sp->text + "' called after its scope ended");
    return in.invoke_macro(*sp, d, a);
  };
  return Value(c);
}

namespace {
struct DepthCount {
  int& d;
  explicit DepthCount(int& dd, const Stmt& s) : d(dd) {
    if (++d > kMaxCallDepth) {
      --d;
      throw TemplateError("macro recursion too deep", s.line, s.col);
    }
  }
  ~DepthCount() { --d; }
};

void bind_params(Interp& in, Scope& sc, const ScopeP& scp, const Stmt& m, const CallArgs& a) {
  size_t k = 0;
  for (; k < m.params.size(); ++k) {
    const auto& [pname, def] = m.params[k];
    const Value* given = nullptr;
    for (const auto& kv : a.kw)
      if (kv.first == pname) given = &kv.second;
    if (!given && k < a.pos.size()) given = &a.pos[k];
    if (given) sc.vars[pname] = *given;
    else if (def) sc.vars[pname] = in.eval(*def, scp);
    else sc.vars[pname] = Value();
  }
  Array varargs;
  for (size_t j = m.params.size(); j < a.pos.size(); ++j) varargs.push_back(a.pos[j]);
  sc.vars["varargs"] = make_array(std::move(varargs));
  auto kwargs = std::make_shared<Object>();
  for (const auto& kv : a.kw) {
    bool known = kv.first == "caller";
    for (const auto& p : m.params) known = known || p.first == kv.first;
    if (!known) kwargs->set(kv.first, kv.second);
    if (kv.first == "caller") sc.vars["caller"] = kv.second;
  }
  sc.vars["kwargs"] = Value(kwargs);
}
}  // namespace

Value Interp::invoke_macro(const Stmt& m, const ScopeP& def, const CallArgs& a) {
  DepthCount dc(call_depth_, m);
  auto sc = std::make_shared<Scope>();
  sc->parent = def;
  bind_params(*this, *sc, sc, m, a);
  std::string out;
  exec(m.body, sc, out);
  return Value(std::move(out));
}

Value Interp::invoke_caller(const Stmt& c, const ScopeP& def, const CallArgs& a) {
  DepthCount dc(call_depth_, c);
  auto sc = std::make_shared<Scope>();
  sc->parent = def;
  bind_params(*this, *sc, sc, c, a);
  std::string out;
  exec(c.body, sc, out);
  return Value(std::move(out));
}

Value Interp::call(const Value& fn, const CallArgs& args, const Expr& at) {
  if (!fn.is_callable()) {
    if (fn.is_undefined()) fail_at(at.line, at.col, "call of an undefined value");
    fail_at(at.line, at.col, std::string("'") + type_name(fn) + "' object is not callable");
  }
  try {
    return fn.c()->fn(args, *this);
  } catch (const Raised& r) {
    throw TemplateError(r.message, at.line, at.col, true);
  } catch (const TemplateError&) {
    throw;
  } catch (const std::exception& ex) {
    fail_at(at.line, at.col, ex.what());
  }
}

Value Interp::eval(const Expr& e, const ScopeP& scope) {
  EvalDepth guard(eval_depth_, *this, e);
  try {
    switch (e.kind) {
      case EK::Literal: return e.value;
      case EK::Name: {
        const Value* v = scope->lookup(e.name);
        return v ? *v : Value();
      }
      case EK::List:
      case EK::Tuple: {
        Array out;
        out.reserve(e.items.size());
        for (const auto& x : e.items) out.push_back(eval(*x, scope));
        return make_array(std::move(out));
      }
      case EK::Dict: {
        auto o = std::make_shared<Object>();
        for (size_t k = 0; k + 1 < e.items.size(); k += 2) {
          Value key = eval(*e.items[k], scope);
          o->set(key.is_string() ? key.s() : to_str(key), eval(*e.items[k + 1], scope));
        }
        return Value(o);
      }
      case EK::Attr: return get_attr(eval(*e.a, scope), e.name);
      case EK::Index: return get_item(eval(*e.a, scope), eval(*e.b, scope));
      case EK::Slice: {
        Value obj = eval(*e.a, scope);
        Value a = e.b ? eval(*e.b, scope) : Value(nullptr);
        Value b = e.c ? eval(*e.c, scope) : Value(nullptr);
        Value c = e.d ? eval(*e.d, scope) : Value(nullptr);
        return slice(obj, a, b, c);
      }
      case EK::Call: {
        Value fn = eval(*e.a, scope);
        CallArgs args;
        for (const auto& x : e.items) args.pos.push_back(eval(*x, scope));
        for (const auto& kv : e.kwargs) args.kw.emplace_back(kv.first, eval(*kv.second, scope));
        return call(fn, args, e);
      }
      case EK::Filter: {
        Value v = eval(*e.a, scope);
        CallArgs args;
        for (const auto& x : e.items) args.pos.push_back(eval(*x, scope));
        for (const auto& kv : e.kwargs) args.kw.emplace_back(kv.first, eval(*kv.second, scope));
        return apply_filter(*this, e.name, v, args);
      }
      case EK::Test: {
        Value v = eval(*e.a, scope);
        CallArgs args;
        for (const auto& x : e.items) args.pos.push_back(eval(*x, scope));
        for (const auto& kv : e.kwargs) args.kw.emplace_back(kv.first, eval(*kv.second, scope));
        bool r = apply_test(*this, e.name, v, args);
        return Value(e.negated ? !r : r);
      }
      case EK::Neg:
      case EK::Pos: {
        Value v = eval(*e.a, scope);
        if (v.is_bool()) v = Value(int64_t(v.b()));
        if (e.kind == EK::Pos) {
          if (!v.is_number()) throw OpError(std::string("bad operand type for unary +: '") + type_name(v) + "'");
          return v;
        }
        if (v.is_int()) {
          if (v.i() == INT64_MIN) return Value(-double(v.i()));
          return Value(-v.i());
        }
        if (v.is_float()) return Value(-v.f());
        throw OpError(std::string("bad operand type for unary -: '") + type_name(v) + "'");
      }
      case EK::Not: return Value(!truthy(eval(*e.a, scope)));
      case EK::And: {
        Value a = eval(*e.a, scope);
        return truthy(a) ? eval(*e.b, scope) : a;
      }
      case EK::Or: {
        Value a = eval(*e.a, scope);
        return truthy(a) ? a : eval(*e.b, scope);
      }
      case EK::Binary: {
        Value a = eval(*e.a, scope);
        Value b = eval(*e.b, scope);
        return eval_binary(e, a, b);
      }
      case EK::Compare: return eval_compare(e, scope);
      case EK::Cond:
        if (truthy(eval(*e.a, scope))) return eval(*e.b, scope);
        return e.c ? eval(*e.c, scope) : Value();
    }
  } catch (const TemplateError&) {
    throw;
  } catch (const std::exception& ex) {
    fail_at(e.line, e.col, ex.what());
  }
  return Value();
}

Value Interp::eval_compare(const Expr& e, const ScopeP& scope) {
  Value left = eval(*e.a, scope);
  for (size_t k = 0; k < e.items.size(); ++k) {
    Value right = eval(*e.items[k], scope);
    const std::string& op = e.names[k];
    bool r;
    if (op == "==") r = equals(left, right);
    else if (op == "!=") r = !equals(left, right);
    else if (op == "<") r = less_than(left, right);
    else if (op == ">") r = less_than(right, left);
    else if (op == "<=") r = !less_than(right, left);
    else if (op == ">=") r = !less_than(left, right);
    else if (op == "in") r = contains(right, left);
    else r = !contains(right, left);
    if (!r) return Value(false);
    left = std::move(right);
  }
  return Value(true);
}

namespace {
std::string binop_error(const std::string& op, const Value& a, const Value& b) {
  return "unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'";
}

Value repeat(const Value& seq, int64_t n, Interp& in) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    if (!seq.s().empty() && uint64_t(n) > tl_size_limit / seq.s().size()) throw OpError("string repetition too large");
    std::string out;
    out.reserve(seq.s().size() * size_t(n));
    for (int64_t k = 0; k < n; ++k) out += seq.s();
    return Value(std::move(out));
  }
  if (!seq.a()->empty() && uint64_t(n) > uint64_t(kMaxRange) / seq.a()->size()) throw OpError("list repetition too large");
  Array out;
  for (int64_t k = 0; k < n; ++k) {
    in.tick();
    out.insert(out.end(), seq.a()->begin(), seq.a()->end());
  }
  return make_array(std::move(out));
}
}  // namespace

Value Interp::eval_binary(const Expr& e, const Value& a0, const Value& b0) {
  const std::string& op = e.name;
  // No single string or list may outgrow the output limit (doubling in a loop would
  // otherwise exhaust memory long before the step limit).
  if (op == "~") {
    std::string x = to_str(a0), y = to_str(b0);
    check_size(x.size() + y.size());
    return Value(x + y);
  }
  // Undefined acts as an empty string next to a string (lenient, like rendering it).
  Value a = a0.is_undefined() && b0.is_string() ? Value("") : a0;
  Value b = b0.is_undefined() && a0.is_string() ? Value("") : b0;
  if (a.is_bool()) a = Value(int64_t(a.b()));
  if (b.is_bool()) b = Value(int64_t(b.b()));
  bool nums = is_numeric(a) && is_numeric(b);
  bool ints = a.is_int() && b.is_int();
  if (op == "+") {
    if (ints) {
      int64_t r;
      if (!__builtin_add_overflow(a.i(), b.i(), &r)) return Value(r);
      return Value(double(a.i()) + double(b.i()));
    }
    if (nums) return Value(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) {
      check_size(a.s().size() + b.s().size());
      return Value(a.s() + b.s());
    }
    if (a.is_array() && b.is_array()) {
      check_size(a.a()->size() + b.a()->size());
      Array out = *a.a();
      out.insert(out.end(), b.a()->begin(), b.a()->end());
      return make_array(std::move(out));
    }
    throw OpError(binop_error(op, a0, b0));
  }
  if (op == "-") {
    if (ints) {
      int64_t r;
      if (!__builtin_sub_overflow(a.i(), b.i(), &r)) return Value(r);
      return Value(double(a.i()) - double(b.i()));
    }
    if (nums) return Value(a.as_double() - b.as_double());
    throw OpError(binop_error(op, a0, b0));
  }
  if (op == "*") {
    if (ints) {
      int64_t r;
      if (!__builtin_mul_overflow(a.i(), b.i(), &r)) return Value(r);
      return Value(double(a.i()) * double(b.i()));
    }
    if (nums) return Value(a.as_double() * b.as_double());
    if ((a.is_string() || a.is_array()) && b.is_int()) return repeat(a, b.i(), *this);
    if ((b.is_string() || b.is_array()) && a.is_int()) return repeat(b, a.i(), *this);
    throw OpError(binop_error(op, a0, b0));
  }
  if (op == "%" && a.is_string()) return Value(percent_format(a.s(), b.is_array() ? *b.a() : Array{b}));
  if (!nums) throw OpError(binop_error(op, a0, b0));
  if (op == "/") {
    if (b.as_double() == 0) throw OpError("division by zero");
    return Value(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (b.as_double() == 0) throw OpError(op == "//" ? "integer division by zero" : "modulo by zero");
    if (ints) {
      int64_t x = a.i(), y = b.i();
      if (x == INT64_MIN && y == -1) return op == "//" ? Value(-double(x)) : Value(int64_t(0));
      int64_t q = x / y, r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) {
        --q;
        r += y;
      }
      return op == "//" ? Value(q) : Value(r);
    }
    double x = a.as_double(), y = b.as_double();
    if (op == "//") return Value(std::floor(x / y));
    double r = std::fmod(x, y);
    if (r != 0 && ((r < 0) != (y < 0))) r += y;
    return Value(r);
  }
  if (op == "**") {
    if (ints && b.i() >= 0) {
      int64_t r = 1, base = a.i();
      bool overflow = false;
      for (int64_t k = 0; k < b.i() && !overflow; ++k) {
        overflow = __builtin_mul_overflow(r, base, &r);
        if (r == 0 || r == 1) break;  // 0**n and 1**n: stop early (and keep big n cheap)
        if (k > 64 && (base == -1)) break;
      }
      if (base == -1) return Value(int64_t(b.i() % 2 == 0 ? 1 : -1));
      if (!overflow) return Value(r);
      return Value(std::pow(double(a.i()), double(b.i())));
    }
    return Value(std::pow(a.as_double(), b.as_double()));
  }
  throw OpError("unknown operator " + op);
}

}  // namespace swapmoe::tmpl
