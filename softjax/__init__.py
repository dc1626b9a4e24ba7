"""softjax: the smooth arg max and its relatives, one family indexed by the inverse temperature."""
