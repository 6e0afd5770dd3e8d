# Warning and sanitizer flags, set in this one place for every target.
set(SPM_WARNINGS -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor -Wimplicit-fallthrough
    -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  # Thread-safety annotations (SPM_GUARDED_BY ...) are checked by clang.
  list(APPEND SPM_WARNINGS -Wthread-safety)
endif()

set(SPM_SAN_FLAGS "")
if(SPM_SANITIZE)
  set(SPM_SAN_FLAGS -fsanitize=${SPM_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_compile_options(${SPM_SAN_FLAGS})
  if(SPM_SANITIZE MATCHES "undefined")
    add_compile_definitions(SPM_URCU_NO_INLINE)  # see src/internal/rcu.h
  endif()
  add_link_options(${SPM_SAN_FLAGS})
endif()

function(spm_apply_flags target)
  target_compile_options(${target} PRIVATE ${SPM_WARNINGS})
endfunction()
