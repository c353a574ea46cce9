" batchd on save: when a file is written, submit the job its project's .batchd-on-save.yaml
" names for it (plugins/editors/README.md). Runs in the background: writing never waits for it.
if exists('g:loaded_batchd') | finish | endif
let g:loaded_batchd = 1

" The helper that finds the rule and submits (plugins/editors/on-save.mjs beside this folder).
let g:batchd_on_save = get(g:, 'batchd_on_save', fnamemodify(resolve(expand('<sfile>:p')), ':h:h:h') . '/on-save.mjs')
let g:batchd_node = get(g:, 'batchd_node', 'node')
" 1: also report each job's end (done, failed, cancelled).
let g:batchd_wait = get(g:, 'batchd_wait', 1)

function! s:Report(channel, line) abort
  echomsg 'batchd: ' . a:line
endfunction

function! s:Failed(channel, line) abort
  echohl WarningMsg | echomsg 'batchd: ' . a:line | echohl None
endfunction

function! batchd#OnSave(file) abort
  if !filereadable(a:file) | return | endif
  let l:cmd = [g:batchd_node, g:batchd_on_save] + (g:batchd_wait ? ['--wait'] : []) + [a:file]
  if has('job')
    " Not stopped when Vim exits: a submission under way completes.
    call job_start(l:cmd, {'out_cb': function('s:Report'), 'err_cb': function('s:Failed'),
          \ 'in_io': 'null', 'stoponexit': ''})
  else
    call system(join(map(copy(l:cmd), 'shellescape(v:val)')) . ' >/dev/null 2>&1 &')
  endif
endfunction

augroup batchd
  autocmd!
  autocmd BufWritePost * call batchd#OnSave(expand('<afile>:p'))
augroup END
