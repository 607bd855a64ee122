// vector_add's driver around a kernel with a planted bug (broken_vector_add.cu): the check must fail it.
#define VECTOR_ADD_SOURCE "broken_vector_add.cu"
#include "vector_add.cpp"
