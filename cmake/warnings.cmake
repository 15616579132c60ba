# scraperd_warnings(TARGET): the project's warning set, errors when SCRAPERD_WERROR is on.
function(scraperd_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 reports Asio's coroutine frames (class-specific operator new/delete, a matching
    # pair) as mismatched once inlined: a false positive. ASan checks the real pairing.
    target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
  endif()
  if(SCRAPERD_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
