#include "policies/libc_set.h"

namespace vow {

const std::vector<LibcSetEntry>& LibcSet() {
  static const std::vector<LibcSetEntry>* const set = new std::vector<LibcSetEntry>{
      {"/etc/localtime", false, "localtime(), tzset(), strftime() with TZ unset"},
      {"/usr/share/zoneinfo", false, "tzset() when TZ names a zone (TZ=Europe/Berlin)"},
      {"/sys/devices/system/cpu/online", false,
       "sysconf(_SC_NPROCESSORS_ONLN), get_nprocs()"},
      {"/sys/devices/system/cpu/possible", false,
       "sysconf(_SC_NPROCESSORS_CONF), get_nprocs_conf()"},
      {"/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", false,
       "the Go runtime at start-up (osinit: the huge page size, for its heap's madvise)"},
      {"/proc/sys/vm/overcommit_memory", false,
       "malloc() when a thread arena shrinks its heap"},
      {"/usr/lib/locale", false, "setlocale() (locale-archive, C.utf8/)"},
      {"/usr/share/locale/locale.alias", false,
       "setlocale() resolving an alias (a symlink to /etc/locale.alias on Debian)"},
      {"/usr/share/locale", false,
       "setlocale() resolving an alias (locale.alias); strerror()/perror() and gettext() "
       "looking up translated messages (LC_MESSAGES/*.mo)"},
      {"/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache", false,
       "iconv_open() (the module cache; the modules themselves are code, not here)"},
      {"/usr/lib/aarch64-linux-gnu/gconv/gconv-modules.cache", false, "iconv_open()"},
      {"/dev/null", true, "freopen(\"/dev/null\"), daemon(), shells' redirections"},
  };
  return *set;
}

const std::vector<LibcSetEntry>& LoaderSet() {
  static const std::vector<LibcSetEntry>* const set = new std::vector<LibcSetEntry>{
      {"/etc/ld.so.cache", false, "the dynamic loader's library cache"},
      {"/etc/ld.so.preload", false, "probed by the dynamic loader (usually absent)"},
      {"/lib", false, "shared libraries (DT_NEEDED, dlopen)"},
      {"/lib64", false, "shared libraries"},
      {"/usr/lib", false, "shared libraries"},
      {"/usr/lib64", false, "shared libraries"},
      {"/usr/local/lib", false, "shared libraries"},
  };
  return *set;
}

const std::vector<LibcSetEntry>& LibcProcSelfSet() {
  static const std::vector<LibcSetEntry>* const set = new std::vector<LibcSetEntry>{
      {"maps", false, "pthread_getattr_np() on the main thread (its stack bounds)"},
      {"status", false, "libraries that read their own limits and ids"},
      {"stat", false, "pthread_getattr_np(), ps-style self inspection"},
  };
  return *set;
}

}  // namespace vow
