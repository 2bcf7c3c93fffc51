#pragma once
// Syntax tree of a parsed template. Nodes are plain structs with a kind tag; the renderer
// (render.cpp) switches on the kind. Every node keeps its 1-based line/column for errors.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "template/value.h"

namespace swapmoe::tmpl {

struct Expr;
using ExprP = std::unique_ptr<Expr>;

enum class EK {
  Literal,  // value
  Name,     // name
  List,     // items
  Tuple,    // items
  Dict,     // items: key0, value0, key1, value1, ...
  Attr,     // a.name
  Index,    // a[b]
  Slice,    // a[b:c:d]; absent parts are null
  Call,     // a(items..., kwargs...)
  Filter,   // a | name(items..., kwargs...); a is null in a {% filter %} block
  Test,     // a is [not] name(items...)
  Neg,      // -a
  Pos,      // +a
  Not,      // not a
  And,      // a and b
  Or,       // a or b
  Binary,   // a op b (+ - * / // % ** ~)
  Compare,  // a op0 items[0] op1 items[1] ... (ops in names)
  Cond,     // b if a else c (c may be null)
};

struct Expr {
  EK kind;
  int line = 0, col = 0;
  Value value;                                      // Literal
  std::string name;                                 // Name, Attr, Filter, Test, Binary op
  ExprP a, b, c, d;                                 // operands (see EK)
  std::vector<ExprP> items;                         // list/tuple/dict/call args/compare rhs
  std::vector<std::pair<std::string, ExprP>> kwargs;
  std::vector<std::string> names;                   // Compare operators
  bool negated = false;                             // Test
};

struct Stmt;
using StmtP = std::unique_ptr<Stmt>;
using Body = std::vector<StmtP>;

enum class SK {
  Text,      // text
  Output,    // {{ expr }}
  If,        // conds[i] -> bodies[i]; else_body
  For,       // targets in expr [if cond] body [else else_body]
  Set,       // targets (or target + attr) = expr
  SetBlock,  // {% set target %}body{% endset %}
  Macro,     // name(params = defaults) body
  CallBlock, // {% call(params) expr %}body{% endcall %}
  FilterBlock,  // {% filter expr %}body{% endfilter %} (expr is a Filter node with a == null)
  Break,
  Continue,
};

struct Stmt {
  SK kind;
  int line = 0, col = 0;
  std::string text;                   // Text; Macro name; Set attribute
  ExprP expr;                         // Output value, For iterable, Set value, call expr
  ExprP cond;                         // For filter condition
  std::vector<ExprP> conds;           // If branches
  std::vector<Body> bodies;           // If branches
  Body body, else_body;
  std::vector<std::string> targets;   // For/Set names (several = tuple unpacking)
  std::vector<std::pair<std::string, ExprP>> params;  // Macro/CallBlock params (default may be null)
};

struct Program {
  Body body;
};

// parser.cpp: lexes and parses; throws TemplateError with the position of the problem.
std::shared_ptr<const Program> parse_template(const std::string& source);

}  // namespace swapmoe::tmpl
