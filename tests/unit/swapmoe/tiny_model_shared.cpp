// The tiny-model writer of tests/unit/model, compiled into this executable too (each
// folder under tests/unit/ becomes its own test program, and the writer is not a library).
#include "../model/tiny_model.cpp"  // NOLINT(bugprone-suspicious-include)
