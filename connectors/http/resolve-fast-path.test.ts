/**
 * The fast path's query splitter must yield exactly what URLSearchParams yields (the Express
 * route's reading), or the two paths would disagree on what a device asked.
 */
import { queryPairs } from './resolve-fast-path.ts';

describe('resolve fast path: queryPairs', () => {
  it.each([
    'itemId=com.example.app&userId=u1&deviceType=ios&country=DE',
    'itemId=a&&userId=b&',
    '&itemId=a',
    'flag&itemId=a&empty=',
    'a=b=c&d',
    '=x&y=',
    '',
    'attr.plan=pro&attr.plan=free',
    'userId=%C3%BC&x=a+b',
    'userId=%E0%A4%A&bad=%zz',
  ])('%s', (q) => {
    expect([...queryPairs(q)]).toEqual([...new URLSearchParams(q)]);
  });
});
