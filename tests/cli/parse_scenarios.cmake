# Drives `docvlm parse` as a user would (run by ctest: cmake -DDOCVLM=... -DDATA=... -DWORK=... -P).
# Real files in (images, a two-page PDF, a two-page TIFF, a corrupt image, an empty folder); outputs and exit codes
# checked; --jobs gives the same files as a serial run; --shard partitions without overlap or loss;
# a run interrupted (outputs missing, a stale .tmp left) completes the set when run again;
# --min-confidence leaves out what the model cannot read with confidence (--reread's, --beam's and --lexicon's values are checked alike); --cross-page-tables
# writes a document's pages once all are parsed and joins a table the page break split.
cmake_minimum_required(VERSION 3.20)

function(run_parse out_var code_var)
  execute_process(COMMAND ${DOCVLM} parse ${ARGN} RESULT_VARIABLE code OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(${out_var} "${out}${err}" PARENT_SCOPE)
  set(${code_var} ${code} PARENT_SCOPE)
endfunction()

# expect("message" CONDITION...): the condition as if() takes it
function(expect msg)
  if(NOT (${ARGN}))
    message(FATAL_ERROR "FAILED: ${msg}")
  endif()
endfunction()

function(expect_same a b msg)
  execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${a} ${b} RESULT_VARIABLE r)
  if(NOT r EQUAL 0)
    message(FATAL_ERROR "FAILED: ${msg} (${a} vs ${b})")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/in ${WORK}/empty)
file(COPY ${DATA}/pdf/two_pages.pdf ${SAMPLE} DESTINATION ${WORK}/in)
file(WRITE ${WORK}/in/broken.png "PNG? this is not an image")
set(all two_pages_p1.md two_pages_p2.md sample_page.md)

# 1. a folder with a PDF, an image and a corrupt file: one clear line for the bad file, exit 1,
#    the others are still parsed
run_parse(out code ${WORK}/in -o ${WORK}/serial)
expect("a corrupt input must make the exit status 1 (got ${code}): ${out}" ${code} EQUAL 1)
string(FIND "${out}" "broken.png" at)
expect("the corrupt file is named in the error: ${out}" ${at} GREATER -1)
foreach(f ${all})
  expect("${f} written despite the corrupt file" EXISTS ${WORK}/serial/${f})
endforeach()
file(GLOB tmps ${WORK}/serial/*.tmp)
list(LENGTH tmps ntmp)
expect("no temporary files left: ${tmps}" ${ntmp} EQUAL 0)

# 2. an empty folder: nothing to do, said plainly, exit 0
run_parse(out code ${WORK}/empty -o ${WORK}/none)
expect("an empty folder is not an error: ${out}" ${code} EQUAL 0)
string(FIND "${out}" "no images or PDFs" at)
expect("an empty folder is reported: ${out}" ${at} GREATER -1)

# 3. --jobs 2 writes the same files as the serial run
run_parse(out code ${WORK}/in/two_pages.pdf ${WORK}/in/sample_page.png -o ${WORK}/jobs --jobs 2 --quiet)
expect("--jobs 2 run: ${out}" ${code} EQUAL 0)
foreach(f ${all})
  expect_same(${WORK}/serial/${f} ${WORK}/jobs/${f} "--jobs 2 gives the same ${f} as a serial run")
endforeach()

# 4. --shard 1/2 and 2/2 together cover every page once
run_parse(out1 code1 ${WORK}/in/two_pages.pdf ${WORK}/in/sample_page.png -o ${WORK}/shard1 --shard 1/2)
run_parse(out2 code2 ${WORK}/in/two_pages.pdf ${WORK}/in/sample_page.png -o ${WORK}/shard2 --shard 2/2)
expect("shard runs: ${out1} ${out2}" ${code1} EQUAL 0 AND ${code2} EQUAL 0)
file(GLOB s1 RELATIVE ${WORK}/shard1 ${WORK}/shard1/*.md)
file(GLOB s2 RELATIVE ${WORK}/shard2 ${WORK}/shard2/*.md)
list(LENGTH s1 n1)
list(LENGTH s2 n2)
set(both ${s1} ${s2})
list(REMOVE_DUPLICATES both)
list(LENGTH both n)
expect("shards overlap or lose pages: [${s1}] [${s2}]" ${n} EQUAL 3 AND ${n1} GREATER 0 AND ${n2} GREATER 0)
run_parse(out code ${WORK}/in -o ${WORK}/x --shard 3/2)
expect("--shard 3/2 is refused" NOT ${code} EQUAL 0)

# 5. resume: outputs that exist are skipped; a missing one (and a stale .tmp) is redone
file(REMOVE ${WORK}/serial/two_pages_p2.md)
file(WRITE ${WORK}/serial/two_pages_p2.md.tmp "half-written")
run_parse(out code ${WORK}/in/two_pages.pdf ${WORK}/in/sample_page.png -o ${WORK}/serial)
expect("resumed run: ${out}" ${code} EQUAL 0)
string(FIND "${out}" "2 pages already done" at)
expect("the resumed run skips the 2 finished pages: ${out}" ${at} GREATER -1)
expect_same(${WORK}/serial/two_pages_p2.md ${WORK}/jobs/two_pages_p2.md "the resumed run completes the missing page")
expect("the stale temporary file is replaced" NOT EXISTS ${WORK}/serial/two_pages_p2.md.tmp)

# 6. a missing model folder is one clear error
run_parse(out code ${WORK}/in/sample_page.png -o ${WORK}/m --model ${WORK}/no-such-model)
expect("a missing model fails" NOT ${code} EQUAL 0)
string(FIND "${out}" "no-such-model" at)
expect("the missing model folder is named: ${out}" ${at} GREATER -1)
# 7. a multi-page TIFF (a scanner's file): one output per page, --pages picks some
file(COPY ${DATA}/upload/two_pages.tiff DESTINATION ${WORK}/tiff)
run_parse(out code ${WORK}/tiff/two_pages.tiff -o ${WORK}/tiffout --pages 2)
expect("TIFF page 2: ${out}" ${code} EQUAL 0 AND EXISTS ${WORK}/tiffout/two_pages_p2.md AND NOT EXISTS ${WORK}/tiffout/two_pages_p1.md)
# 8. --min-confidence: 0 (nothing is read with certainty) leaves every text line out and lists its
#    box as unreadable; a value that is not a log-probability is one clear error
run_parse(out code ${WORK}/in/sample_page.png -o ${WORK}/conf --format json --min-confidence 0)
expect("--min-confidence 0: ${out}" ${code} EQUAL 0 AND EXISTS ${WORK}/conf/sample_page.json)
file(READ ${WORK}/conf/sample_page.json json)
string(FIND "${json}" "\"unreadable\"" at)
expect("unreadable boxes are listed with --min-confidence 0" ${at} GREATER -1)
string(FIND "${json}" "North-Western" at)
expect("no text is guessed with --min-confidence 0" ${at} EQUAL -1)
run_parse(out code ${WORK}/in/sample_page.png -o ${WORK}/conf2 --min-confidence 0.5)
string(FIND "${out}" "--min-confidence: '0.5'" at)
expect("a positive --min-confidence is refused: ${out}" NOT ${code} EQUAL 0 AND ${at} GREATER -1)
# 8b. --reread: off reads each line once; a value that is not a log-probability is one clear error
run_parse(out code ${WORK}/in/sample_page.png -o ${WORK}/once --reread off --quiet)
expect("--reread off: ${out}" ${code} EQUAL 0 AND EXISTS ${WORK}/once/sample_page.md)
run_parse(out code ${WORK}/in/sample_page.png -o ${WORK}/once2 --reread often)
string(FIND "${out}" "--reread: 'often'" at)
expect("a --reread that is no number is refused: ${out}" NOT ${code} EQUAL 0 AND ${at} GREATER -1)
# 8b'. --beam: doubtful lines also read by beam search (every line doubtful here); a width that is
#     not a whole number of 0-64 is one clear error
run_parse(out code ${WORK}/in/sample_page.png -o ${WORK}/beam --beam 3 --reread 0 --quiet)
expect("--beam 3: ${out}" ${code} EQUAL 0 AND EXISTS ${WORK}/beam/sample_page.md)
run_parse(out code ${WORK}/in/sample_page.png -o ${WORK}/beam2 --beam 2.5)
string(FIND "${out}" "--beam: 2.5 is not a whole number" at)
expect("a --beam of 2.5 is refused: ${out}" NOT ${code} EQUAL 0 AND ${at} GREATER -1)
run_parse(out code ${WORK}/in/sample_page.png -o ${WORK}/beam3 --beam 65)
string(FIND "${out}" "--beam: '65' is not a beam width" at)
expect("a --beam of 65 is refused: ${out}" NOT ${code} EQUAL 0 AND ${at} GREATER -1)
# 8c. --lexicon: off reads words as the model reads them; a margin outside [0, 100] is one clear error
run_parse(out code ${WORK}/in/sample_page.png -o ${WORK}/words --lexicon off --quiet)
expect("--lexicon off: ${out}" ${code} EQUAL 0 AND EXISTS ${WORK}/words/sample_page.md)
run_parse(out code ${WORK}/in/sample_page.png -o ${WORK}/words2 --lexicon -1)
string(FIND "${out}" "--lexicon: '-1' is not a margin" at)
expect("a negative --lexicon is refused: ${out}" NOT ${code} EQUAL 0 AND ${at} GREATER -1)
# 9. --cross-page-tables holds a document's pages until its last one is parsed, then writes them
#    all (these two pages have no table across the break: the same files as without it)
run_parse(out code ${WORK}/in/two_pages.pdf -o ${WORK}/cross --cross-page-tables --jobs 2 --quiet)
expect("--cross-page-tables: ${out}" ${code} EQUAL 0)
foreach(f two_pages_p1.md two_pages_p2.md)
  expect_same(${WORK}/serial/${f} ${WORK}/cross/${f} "--cross-page-tables gives ${f} as written without it")
endforeach()
# 10. a ruled table split by the page break (the rows after the repeated header continue on
#     page 2): --cross-page-tables joins it under page 1's table; without it each page keeps its part
file(COPY ${DATA}/upload/split_table.tiff DESTINATION ${WORK}/split)
run_parse(out code ${WORK}/split/split_table.tiff -o ${WORK}/split/apart --quiet)
run_parse(out2 code2 ${WORK}/split/split_table.tiff -o ${WORK}/split/joined --cross-page-tables --quiet)
expect("split table runs: ${out} ${out2}" ${code} EQUAL 0 AND ${code2} EQUAL 0)
file(READ ${WORK}/split/apart/split_table_p2.md apart2)
file(READ ${WORK}/split/joined/split_table_p1.md joined1)
file(READ ${WORK}/split/joined/split_table_p2.md joined2)
string(FIND "${apart2}" "Tanguis" a2)
string(FIND "${joined1}" "Delta" j1)
string(FIND "${joined2}" "Tanguis" j2)
string(FIND "${joined2}" "differences between seasons" j2text)
expect("apart, page 2 keeps its rows: ${apart2}" ${a2} GREATER -1)
expect("joined, page 1's table ends with page 2's last row: ${joined1}" ${j1} GREATER -1)
expect("joined, page 2 keeps its text but not the table: ${joined2}" ${j2} EQUAL -1 AND ${j2text} GREATER -1)
message(STATUS "all parse scenarios passed")
