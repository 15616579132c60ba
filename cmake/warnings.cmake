# scraperd_warnings(TARGET): the project's warning set, errors when SCRAPERD_WERROR is on.
function(scraperd_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor)
  if(SCRAPERD_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
