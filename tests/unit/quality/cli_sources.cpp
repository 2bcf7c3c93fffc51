// The measurement code lives in the CLI (src/cli/eval_*.cpp), which CMake compiles into the
// swapmoe executable only, not into a library the tests could link. This translation unit
// compiles those sources into test_quality as well, so that the tests run the very code the
// `eval --reference` and `sweep` commands use.

#include "cli/eval_metrics.cpp"
#include "cli/eval_pass.cpp"
#include "cli/eval_spill.cpp"
#include "cli/eval_table.cpp"
