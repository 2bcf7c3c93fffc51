// Model::load: a model whose experts live where the options' memory budget puts them.
// It composes the model (model/) with the memory plan and the expert cache (cache/), so
// it lives here, above both.

#include "gguf/gguf.h"
#include "runtime/model_budget.h"

namespace swapmoe {

std::unique_ptr<Model> Model::load(const std::string& path, const ModelOptions& opts) {
  BudgetedExperts experts(opts);
  return Model::open(GgufFile::open(path), opts, experts);
}

}  // namespace swapmoe
