{
  "targets": [
    {
      "target_name": "drain_init",
      "sources": ["drain_init.c", "glibc_compat.c"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-O2", "-include", "<(module_root_dir)/glibc_compat.h"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
