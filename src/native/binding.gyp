{
  "targets": [
    {
      "target_name": "drain_init",
      "sources": ["drain_init.c"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
