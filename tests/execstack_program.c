/* A program linked with -z execstack (its PT_GNU_STACK has PF_X): for
 * //tests:real_programs_test, which checks that `vow run` refuses it without prot_exec
 * (the kernel would make its stack executable before any filter looks: review h71). */
#include <stdio.h>

int main(void) {
  puts("ran with an executable stack");
  return 0;
}
