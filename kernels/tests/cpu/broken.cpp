// vector_add's driver around a kernel that reads b one element late: the check must fail it.
#define VECTOR_ADD_SOURCE "broken_vector_add.cu"
#include "vector_add.cpp"
