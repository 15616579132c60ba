-- pandoc filter for the man pages: a table becomes a list of tagged paragraphs (.TP), one per
-- row, because tables of long prose do not fit an 80-column terminal. The first cell is the
-- tag; the middle cells become "header: value" lines; the last cell is the body.
local function blocks_inlines(blocks)
  local out = pandoc.List()
  for i, b in ipairs(blocks) do
    if i > 1 then out:insert(pandoc.Space()) end
    if b.content then out:extend(b.content) end
  end
  return out
end

function Table(t)
  local headers = {}
  if t.head and t.head.rows and #t.head.rows > 0 then
    for _, cell in ipairs(t.head.rows[1].cells) do
      table.insert(headers, pandoc.utils.stringify(cell.contents))
    end
  end
  local items = pandoc.List()
  for _, body in ipairs(t.bodies) do
    for _, row in ipairs(body.body) do
      local cells = row.cells
      local term = blocks_inlines(cells[1].contents)
      local defs = pandoc.List()
      local meta = pandoc.List()
      for c = 2, #cells - 1 do
        if #meta > 0 then meta:extend({pandoc.Str(";"), pandoc.Space()}) end
        if headers[c] and headers[c] ~= "" then
          meta:extend({pandoc.Emph({pandoc.Str(headers[c])}), pandoc.Str(":"), pandoc.Space()})
        end
        meta:extend(blocks_inlines(cells[c].contents))
      end
      if #meta > 0 then defs:insert(pandoc.Para(meta)) end
      if #cells > 1 then defs:extend(cells[#cells].contents) end
      items:insert({term, {defs}})
    end
  end
  return pandoc.DefinitionList(items)
end
