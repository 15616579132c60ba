# What `cmake --install` and the .deb (`make package`, CPack) put where; docs/operations.md
# lists the same paths. Generated here at build time:
#   man/scraperd.1(.gz)       from docs/scraperd.1.md                (pandoc, Markdown → roff)
#   man/scraperd.yaml.5(.gz)  from docs/man/scraperd.yaml.5.md + docs/configuration.md
#   jobs.schema.json          `scraperd schema` (from the loader's key tables)
#   changelog.gz              cmake/debian/changelog
# The man pages come from the Markdown the docs already are (docs/configuration.md is the
# reference of the job language), so there is one source; pandoc renders its tables as tagged
# paragraphs (docs/man/man-tables.lua) so that the pages fit 80 columns.

include(GNUInstallDirs)

find_program(SCRAPERD_PANDOC pandoc)
find_program(SCRAPERD_GZIP gzip REQUIRED)
if(NOT SCRAPERD_PANDOC)
  message(FATAL_ERROR "pandoc not found (it builds the man pages): run scripts/install-deps")
endif()

# The Debian changelog names the version the package is: it must be this project's.
file(STRINGS ${PROJECT_SOURCE_DIR}/cmake/debian/changelog changelog_head LIMIT_COUNT 1)
if(NOT changelog_head MATCHES "^scraperd \\(${PROJECT_VERSION}\\) ")
  message(FATAL_ERROR "cmake/debian/changelog starts with '${changelog_head}': add an entry "
                      "for version ${PROJECT_VERSION}")
endif()

set(man_dir ${PROJECT_BINARY_DIR}/man)
set(man_filter ${PROJECT_SOURCE_DIR}/docs/man/man-tables.lua)
# scraperd_man(NAME SECTION SOURCES...): man/manSECTION/NAME.SECTION and .gz (MANPATH=man)
function(scraperd_man name section)
  set(page ${man_dir}/man${section}/${name}.${section})
  set(sources ${ARGN})
  list(TRANSFORM sources PREPEND ${PROJECT_SOURCE_DIR}/)
  string(TOUPPER ${name} title)
  add_custom_command(
    OUTPUT ${page} ${page}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${man_dir}/man${section}
    COMMAND ${SCRAPERD_PANDOC} --standalone --to man --lua-filter ${man_filter}
            --metadata title=${title} --metadata section=${section}
            --metadata "footer=scraperd ${PROJECT_VERSION}" --metadata "header=scraperd manual"
            --output ${page} ${sources}
    COMMAND ${SCRAPERD_GZIP} -9 -n -f -k ${page}
    DEPENDS ${sources} ${man_filter}
    COMMENT "Generating man page ${name}(${section})"
    VERBATIM)
endfunction()
scraperd_man(scraperd 1 docs/scraperd.1.md)
scraperd_man(scraperd.yaml 5 docs/man/scraperd.yaml.5.md docs/configuration.md)

set(schema_file ${PROJECT_BINARY_DIR}/jobs.schema.json)
add_custom_command(
  OUTPUT ${schema_file}
  COMMAND sh -c "\"$1\" schema > \"$2\"" sh $<TARGET_FILE:scraperd> ${schema_file}
  DEPENDS scraperd
  COMMENT "Writing jobs.schema.json (scraperd schema)"
  VERBATIM)

set(changelog_gz ${PROJECT_BINARY_DIR}/changelog.gz)
add_custom_command(
  OUTPUT ${changelog_gz}
  COMMAND sh -c "${SCRAPERD_GZIP} -9 -n -c \"$1\" > \"$2\"" sh
          ${PROJECT_SOURCE_DIR}/cmake/debian/changelog ${changelog_gz}
  DEPENDS ${PROJECT_SOURCE_DIR}/cmake/debian/changelog
  VERBATIM)

add_custom_target(package_files ALL
  DEPENDS ${man_dir}/man1/scraperd.1.gz ${man_dir}/man5/scraperd.yaml.5.gz ${schema_file}
          ${changelog_gz})

# Install into the FHS paths a Debian package uses.
if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT)
  set(CMAKE_INSTALL_PREFIX /usr CACHE PATH "Install prefix" FORCE)
endif()
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS
    OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
set(doc_dir ${CMAKE_INSTALL_DATADIR}/doc/scraperd)
install(TARGETS scraperd RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES systemd/scraperd.service DESTINATION lib/systemd/system)
install(FILES systemd/scraperd.sysusers DESTINATION lib/sysusers.d RENAME scraperd.conf)
install(FILES systemd/jobs.yaml DESTINATION /etc/scraperd)  # absolute: /etc whatever the prefix
install(FILES ${man_dir}/man1/scraperd.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${man_dir}/man5/scraperd.yaml.5.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man5)
install(FILES completion/scraperd.bash DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions
        RENAME scraperd)
install(FILES completion/_scraperd DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
install(FILES ${schema_file} DESTINATION ${CMAKE_INSTALL_DATADIR}/scraperd)
# The README where its links point: docs/*.md beside it.
install(FILES README.md ${changelog_gz} cmake/debian/copyright DESTINATION ${doc_dir})
install(FILES docs/configuration.md docs/schema.md docs/operations.md docs/ARCHITECTURE.md
              docs/performance.md docs/reliability.md docs/scaling.md docs/scraperd.1.md
        DESTINATION ${doc_dir}/docs)
install(FILES docs/img/dashboard-jobs.png docs/img/dashboard-job.png  # the README's screenshots
        DESTINATION ${doc_dir}/docs/img)
install(FILES examples/jobs.yaml examples/alerts.yml systemd/scraperd-render.conf
        DESTINATION ${doc_dir}/examples)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_NAME scraperd)
set(CPACK_PACKAGE_CONTACT "scraperd maintainers <scraperd@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "scraping daemon with YAML jobs and SQLite results")
# The extended description, in lines of at most 80 columns (lintian).
string(JOIN "\n" CPACK_PACKAGE_DESCRIPTION
  "scraperd runs scrape jobs described in YAML: which URLs, how often (every or"
  "cron), how politely (per-host rate, burst and concurrency limits, robots.txt,"
  "Retry-After, retries with backoff). It fetches with libcurl (HTTP/1.1, HTTP/2,"
  "TLS, proxies), extracts fields with CSS, XPath, regular expressions or JSON"
  "Pointer, notices when they change, and stores every result and every error"
  "with its kind in a SQLite database."
  ""
  "The package holds a hardened systemd service, an HTTP API with Prometheus"
  "metrics, man pages, bash and zsh completion and a JSON Schema for editing job"
  "files.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "chromium")  # render: chromium jobs (docs/operations.md)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends: from the linked libraries (dpkg-shlibdeps)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/cmake/debian/conffiles ${PROJECT_SOURCE_DIR}/cmake/debian/postinst
    ${PROJECT_SOURCE_DIR}/cmake/debian/prerm ${PROJECT_SOURCE_DIR}/cmake/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
