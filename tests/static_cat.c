/* A static musl program for //tests:real_programs_test (untrusted side): no loader, no
 * vow code. Prints "static: " and then each file named on the command line. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    int fd = open(argv[i], O_RDONLY);
    if (fd < 0) {
      perror(argv[i]);
      return 1;
    }
    char buf[4096];
    ssize_t n;
    fputs("static: ", stdout);
    while ((n = read(fd, buf, sizeof(buf))) > 0) fwrite(buf, 1, (size_t)n, stdout);
    close(fd);
  }
  return 0;
}
