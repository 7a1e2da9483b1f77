{
  "targets": [
    {
      "target_name": "exec_helper",
      "type": "none",
      "actions": [
        {
          "action_name": "build_exec_helper",
          "inputs": ["exec_helper.c"],
          "outputs": ["<(PRODUCT_DIR)/exec_helper"],
          "action": [
            "$(CC.target)", "-Os", "-static", "-nostdlib", "-ffreestanding", "-fno-builtin", "-fno-stack-protector",
            "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-fno-pie", "-no-pie",
            "-fno-tree-loop-distribute-patterns", "-Wall", "-Wextra", "-Wl,--build-id=none", "-Wl,-z,noexecstack",
            "-Wl,-z,norelro", "-Wl,-z,noseparate-code", "-Wl,--gc-sections", "-s", "-o", "<@(_outputs)", "<@(_inputs)"
          ]
        }
      ]
    },
    {
      "target_name": "drain_init",
      "dependencies": ["exec_helper"],
      "sources": ["drain_init.c", "glibc_compat.c"],
      "cflags": [
        "-std=c11", "-Wall", "-Wextra", "-O2", "-include", "<(module_root_dir)/glibc_compat.h", "-Wa,-I<(PRODUCT_DIR)"
      ],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"]
    }
  ]
}
